"""User queries, scoped to the actor's organisation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from leadflow.authz.actor import Actor
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.models.auth_session import AuthSession
from leadflow.models.role import Role
from leadflow.models.user import User


@dataclass(frozen=True, slots=True)
class UserFilter:
    """Filters of the user list."""

    search: str | None = None
    role: str | None = None
    status: str | None = None
    team_id: uuid.UUID | None = None


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    """Any user with this (lower-cased) email, with the role loaded."""
    return await session.scalar(
        select(User).options(joinedload(User.role)).where(User.email == email.lower())
    )


async def get_with_role(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """A user by id with the role loaded (no scope: authentication only)."""
    return await session.scalar(
        select(User).options(joinedload(User.role)).where(User.id == user_id)
    )


async def get(session: AsyncSession, actor: Actor, user_id: uuid.UUID) -> User | None:
    """A user of the actor's organisation."""
    return await session.scalar(
        select(User)
        .options(joinedload(User.role))
        .where(User.id == user_id, User.organization_id == actor.organization_id)
    )


def _filtered(actor: Actor, f: UserFilter) -> Select[User]:
    stmt = (
        select(User)
        .join(Role, Role.id == User.role_id)
        .where(User.organization_id == actor.organization_id)
    )
    if f.search:
        like = f"%{f.search.lower()}%"
        stmt = stmt.where(or_(func.lower(User.full_name).like(like), User.email.like(like)))
    if f.role:
        stmt = stmt.where(Role.name == f.role)
    if f.status:
        stmt = stmt.where(User.status == f.status)
    if f.team_id:
        stmt = stmt.where(User.team_id == f.team_id)
    return stmt


async def list_users(
    session: AsyncSession, actor: Actor, f: UserFilter, page: PageParams
) -> tuple[list[User], int]:
    """A page of users by name, and the total."""
    stmt = _filtered(actor, f)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = await session.scalars(
        stmt.options(joinedload(User.role))
        .order_by(func.lower(User.full_name), User.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows.unique()), int(total or 0)


async def revoke_sessions(session: AsyncSession, user_id: uuid.UUID, reason: str) -> None:
    """End every live session of a user."""
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


async def is_active_member(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Whether `user_id` is an active user of the organisation."""
    found = await session.scalar(
        select(User.id).where(
            User.id == user_id, User.organization_id == org_id, User.status == "active"
        )
    )
    return found is not None


async def active_members(
    session: AsyncSession, org_id: uuid.UUID
) -> list[tuple[uuid.UUID, str, str]]:
    """Id, email and full name of the organisation's active users."""
    rows = await session.execute(
        select(User.id, User.email, User.full_name).where(
            User.organization_id == org_id, User.status == "active"
        )
    )
    return [(i, e, n) for i, e, n in rows.all()]


async def full_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of the users with these ids (callers pass ids from rows already scoped)."""
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.full_name).where(User.id.in_(ids)))
    return {i: n for i, n in rows.all()}


async def active_with_role(
    session: AsyncSession,
    role: str,
    *,
    organization_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
) -> list[User]:
    """Active users holding the role `role`, in an organisation and/or a team."""
    stmt = select(User).join(Role, Role.id == User.role_id)
    if organization_id is not None:
        stmt = stmt.where(User.organization_id == organization_id)
    if team_id is not None:
        stmt = stmt.where(User.team_id == team_id)
    rows = await session.scalars(stmt.where(Role.name == role, User.status == "active"))
    return list(rows)


async def lock_active_admins(session: AsyncSession, organization_id: uuid.UUID) -> list[uuid.UUID]:
    """Ids of the organisation's active admins, row-locked on PostgreSQL.

    The lock makes two concurrent demotions queue, so the second sees the first and the
    organisation never ends without an admin.
    """
    rows = await session.scalars(
        select(User.id)
        .join(Role, Role.id == User.role_id)
        .where(
            User.organization_id == organization_id,
            Role.name == "admin",
            User.status == "active",
        )
        .order_by(User.id)
        .with_for_update(of=User)
    )
    return list(rows)
