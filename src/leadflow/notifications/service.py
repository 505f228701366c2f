"""In-app notifications and notification emails (through the outbox)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.exceptions import NotFound
from leadflow.kit.clock import utcnow
from leadflow.kit.fanout import announce
from leadflow.kit.pagination import PageParams
from leadflow.models.outbox import Notification, OutboxMessage
from leadflow.notifications import repository
from leadflow.notifications.attachments import AttachmentRef
from leadflow.notifications.email import DELIVERY_KEY_HEADER, render
from leadflow.users import repository as members
from leadflow.worker import outbox


async def notify(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    kind: str,
    title: str,
    body: str | None = None,
    lead_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    delivery_key: str | None = None,
) -> Notification | None:
    """An in-app notification (once per `delivery_key`)."""
    if delivery_key is not None and await repository.delivery_key_exists(session, delivery_key):
        return None
    row = Notification(
        organization_id=organization_id,
        user_id=user_id,
        kind=kind,
        title=title[:300],
        body=body,
        lead_id=lead_id,
        data=data or {},
        delivery_key=delivery_key,
    )
    session.add(row)
    await session.flush()
    # Streams of this user in every API process read it once the transaction commits.
    announce(session, stream_topic(user_id))
    return row


def stream_topic(user_id: uuid.UUID) -> str:
    """The wake-up topic of a user's notification streams."""
    return f"notifications:{user_id}"


async def queue_email(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID | None,
    to: str,
    template: str,
    language: str,
    context: dict[str, Any],
    delivery_key: str,
    max_attempts: int = 3,
    attachments: list[AttachmentRef] | None = None,
) -> OutboxMessage:
    """Render a templated email now and put it in the outbox (sent after commit).

    `attachments` are references: delivery loads each file when it sends the email.
    """
    email = render(template, language, context, to=to)
    payload: dict[str, Any] = {
        "to": email.to,
        "subject": email.subject,
        "text": email.text,
        "html": email.html,
        "template": template,
        "language": language,
        "headers": {**email.headers, DELIVERY_KEY_HEADER: delivery_key},
    }
    if attachments:
        payload["attachments"] = [a.payload() for a in attachments]
    return await outbox.add(
        session,
        organization_id=organization_id,
        kind="email",
        delivery_key=delivery_key,
        payload=payload,
        max_attempts=max_attempts,
    )


async def notify_email_failed(session: AsyncSession, row: OutboxMessage) -> None:
    """Tell the organisation's admins in-app that an email finally failed (once per admin)."""
    if row.organization_id is None:
        return
    admins = await members.active_with_role(session, "admin", organization_id=row.organization_id)
    for admin in admins:
        await notify(
            session,
            organization_id=row.organization_id,
            user_id=admin.id,
            kind="email_failed",
            title=f"Email could not be sent: {row.payload.get('subject', '')}",
            body=f"To {row.payload.get('to')}: {row.last_error}",
            data={"outbox_id": str(row.id)},
            delivery_key=f"email-failed:{row.id}:{admin.id}",
        )


async def list_for(
    session: AsyncSession, actor: Actor, page: PageParams, *, unread: bool | None
) -> tuple[list[Notification], int]:
    """The actor's notifications, newest first."""
    return await repository.list_for(session, actor, page, unread=unread)


async def unread_count(session: AsyncSession, actor: Actor) -> int:
    """How many of the actor's notifications are unread."""
    return await repository.unread_count(session, actor)


async def mark_read(
    session: AsyncSession, actor: Actor, notification_id: uuid.UUID
) -> Notification:
    """Mark one of the actor's notifications read."""
    row = await repository.get_own(session, actor, notification_id)
    if row is None:
        raise NotFound("Notification not found")
    if row.read_at is None:
        row.read_at = utcnow()
    await session.flush()
    return row


async def mark_all_read(session: AsyncSession, actor: Actor) -> int:
    """Mark every unread notification of the actor read; returns how many."""
    return await repository.mark_all_read(session, actor, utcnow())


async def newer_than(
    session: AsyncSession, user_id: uuid.UUID, after: uuid.UUID | None, limit: int = 50
) -> list[Notification]:
    """Notifications of a user created after the one with id `after` (UUIDv7: time-ordered)."""
    return await repository.newer_than(session, user_id, after, limit)
