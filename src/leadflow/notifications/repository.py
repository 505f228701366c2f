"""Notification queries, scoped to the user (outbox queries live in `worker.outbox`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.kit.pagination import PageParams
from leadflow.models.outbox import Notification


async def delivery_key_exists(session: AsyncSession, delivery_key: str) -> bool:
    """Whether a notification with this `delivery_key` was already created."""
    found = await session.scalar(
        select(Notification.id).where(Notification.delivery_key == delivery_key)
    )
    return bool(found)


async def list_for(
    session: AsyncSession, actor: Actor, page: PageParams, *, unread: bool | None
) -> tuple[list[Notification], int]:
    """The actor's notifications, newest first, and their total."""
    conds = [
        Notification.user_id == actor.user_id,
        Notification.organization_id == actor.organization_id,
    ]
    if unread is True:
        conds.append(Notification.read_at.is_(None))
    elif unread is False:
        conds.append(Notification.read_at.is_not(None))
    total = await session.scalar(select(func.count()).select_from(Notification).where(*conds))
    rows = await session.scalars(
        select(Notification)
        .where(*conds)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows), int(total or 0)


async def unread_count(session: AsyncSession, actor: Actor) -> int:
    """How many of the actor's notifications are unread."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == actor.user_id, Notification.read_at.is_(None))
        )
        or 0
    )


async def get_own(
    session: AsyncSession, actor: Actor, notification_id: uuid.UUID
) -> Notification | None:
    """One of the actor's notifications."""
    return await session.scalar(
        select(Notification).where(
            Notification.id == notification_id,
            Notification.user_id == actor.user_id,
            Notification.organization_id == actor.organization_id,
        )
    )


async def mark_all_read(session: AsyncSession, actor: Actor, now: datetime) -> int:
    """Set `read_at` on every unread notification of the actor; returns how many."""
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == actor.user_id, Notification.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def newer_than(
    session: AsyncSession, user_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[Notification]:
    """Notifications of a user created after the one with id `after` (UUIDv7: time-ordered)."""
    stmt = select(Notification).where(Notification.user_id == user_id)
    if after is not None:
        stmt = stmt.where(Notification.id > after)
    return list(await session.scalars(stmt.order_by(Notification.id).limit(limit)))


async def latest_id(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    """The id of a user's newest notification (where a live stream starts from)."""
    return await session.scalar(
        select(Notification.id)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id.desc())
        .limit(1)
    )
