"""Call-request queries with organisation and row scope."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.authz.scopes import call_scope_conditions as scope_conditions
from leadflow.calls.schemas import CallStatus
from leadflow.db.claims import claim_returning
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.models.call_request import CallRequest, CallRequestEvent
from leadflow.models.lead import Lead
from leadflow.models.organization import Organization

# Waiting for an attempt: due once `scheduled_for` has passed.
WAITING: tuple[CallStatus, ...] = (
    CallStatus.QUEUED,
    CallStatus.OUTSIDE_BUSINESS_HOURS,
    CallStatus.WAITING_FOR_CALLBACK,
)
ON_CALL: tuple[CallStatus, ...] = (CallStatus.CALLING, CallStatus.IN_PROGRESS)


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Filters of the call-request list; `user` matches the requester or the client's user id."""

    status: str | None = None
    requested_by: uuid.UUID | None = None
    external_user_id: str | None = None
    lead_id: uuid.UUID | None = None


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def get(session: AsyncSession, actor: Actor, ident: str) -> CallRequest | None:
    """A request in scope by our id or the client's `request_id` (our id wins a tie)."""
    as_id = _as_uuid(ident)
    match = CallRequest.request_id == ident
    if as_id is not None:
        match = or_(CallRequest.id == as_id, match)
    rows = list(
        await session.scalars(select(CallRequest).where(*scope_conditions(actor), match).limit(2))
    )
    rows.sort(key=lambda r: r.id != as_id)
    return rows[0] if rows else None


async def by_request_id(
    session: AsyncSession, organization_id: uuid.UUID, request_id: str
) -> CallRequest | None:
    """The organisation's request with the client's `request_id`, whoever made it."""
    return await session.scalar(
        select(CallRequest).where(
            CallRequest.organization_id == organization_id, CallRequest.request_id == request_id
        )
    )


async def in_scope(session: AsyncSession, actor: Actor, call_id: uuid.UUID) -> bool:
    """Whether the actor may see request `call_id`."""
    found = await session.scalar(
        select(CallRequest.id).where(CallRequest.id == call_id, *scope_conditions(actor))
    )
    return found is not None


async def list_requests(
    session: AsyncSession, actor: Actor, f: CallFilter, page: PageParams
) -> tuple[list[CallRequest], int]:
    """Requests in scope, newest first."""
    conds = scope_conditions(actor)
    if f.status:
        conds.append(CallRequest.status == f.status)
    users: list[ColumnElement[bool]] = []
    if f.requested_by is not None:
        users.append(CallRequest.requested_by == f.requested_by)
    if f.external_user_id is not None:
        users.append(CallRequest.external_user_id == f.external_user_id)
    if users:
        conds.append(or_(*users))
    if f.lead_id is not None:
        conds.append(CallRequest.lead_id == f.lead_id)
    total = await session.scalar(select(func.count()).select_from(CallRequest).where(*conds))
    rows = await session.scalars(
        select(CallRequest)
        .where(*conds)
        .order_by(CallRequest.created_at.desc(), CallRequest.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows), int(total or 0)


async def events(
    session: AsyncSession, call_id: uuid.UUID, page: PageParams
) -> tuple[list[CallRequestEvent], int]:
    """A request's events in order."""
    total = await session.scalar(
        select(func.count())
        .select_from(CallRequestEvent)
        .where(CallRequestEvent.call_request_id == call_id)
    )
    rows = await session.scalars(
        select(CallRequestEvent)
        .where(CallRequestEvent.call_request_id == call_id)
        .order_by(CallRequestEvent.seq)
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows), int(total or 0)


async def events_after(
    session: AsyncSession, call_id: uuid.UUID, after_seq: int, limit: int = 100
) -> list[CallRequestEvent]:
    """Events numbered after `after_seq`, in order (the event stream's poll)."""
    rows = await session.scalars(
        select(CallRequestEvent)
        .where(CallRequestEvent.call_request_id == call_id, CallRequestEvent.seq > after_seq)
        .order_by(CallRequestEvent.seq)
        .limit(limit)
    )
    return list(rows)


async def lead_by_phone(
    session: AsyncSession, organization_id: uuid.UUID, phones: Sequence[str]
) -> uuid.UUID | None:
    """The organisation's oldest live lead with one of `phones`, the first phone preferred."""
    for phone in phones:
        found = await session.scalar(
            select(Lead.id)
            .where(
                Lead.organization_id == organization_id,
                Lead.phone == phone,
                Lead.deleted_at.is_(None),
            )
            .order_by(Lead.created_at, Lead.id)
            .limit(1)
        )
        if found is not None:
            return found
    return None


async def due_ids(session: AsyncSession, before: datetime, limit: int) -> list[uuid.UUID]:
    """Waiting requests whose next attempt was due before `before`, oldest first."""
    rows = await session.scalars(
        select(CallRequest.id)
        .where(
            CallRequest.status.in_([s.value for s in WAITING]),
            CallRequest.scheduled_for.is_not(None),
            CallRequest.scheduled_for <= before,
        )
        .order_by(CallRequest.scheduled_for)
        .limit(limit)
    )
    return list(rows)


async def stale_calls(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[uuid.UUID, int]]:
    """Running calls past their deadline (a crashed worker, a lost callback): (id, attempt)."""
    rows = await session.execute(
        select(CallRequest.id, CallRequest.attempts)
        .where(
            CallRequest.status.in_([s.value for s in ON_CALL]),
            CallRequest.call_deadline_at.is_not(None),
            CallRequest.call_deadline_at <= now,
        )
        .order_by(CallRequest.call_deadline_at)
        .limit(limit)
    )
    return [(i, a) for i, a in rows.all()]


async def move_status(
    session: AsyncSession,
    call_id: uuid.UUID,
    *,
    expect: Sequence[str],
    to: str,
    attempt: int | None,
    new_events: int,
    values: dict[str, Any],
) -> tuple[int, uuid.UUID] | None:
    """Set `to` (and `values`) if the request is still in one of `expect` (and on `attempt`).

    One conditional UPDATE, so two deliveries of the same provider event cannot both move the
    request. Reserves `new_events` event numbers; returns the last one and the organisation,
    or None when nothing matched.
    """
    conds = [CallRequest.id == call_id, CallRequest.status.in_(expect)]
    if attempt is not None:
        conds.append(CallRequest.attempts == attempt)
    row = await claim_returning(
        session,
        CallRequest,
        (CallRequest.event_count, CallRequest.organization_id),
        *conds,
        status=to,
        event_count=CallRequest.event_count + new_events,
        updated_at=utcnow(),
        **values,
    )
    return None if row is None else (int(row[0]), row[1])


async def lock_organization(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """Queue concurrent submissions of one organisation behind each other (PostgreSQL row
    lock on the organisation until commit), so the limit counts below stay exact.

    FOR NO KEY UPDATE: rows referencing the organisation (their foreign-key checks take a
    key-share lock) are not blocked. SQLite already runs one writer at a time.
    """
    await session.execute(
        select(Organization.id)
        .where(Organization.id == organization_id)
        .with_for_update(key_share=True)
    )


def _created_since(
    organization_id: uuid.UUID,
    since: datetime,
    requested_by: uuid.UUID | None,
    strict: bool,
) -> list[ColumnElement[bool]]:
    conds = [
        CallRequest.organization_id == organization_id,
        CallRequest.created_at > since if strict else CallRequest.created_at >= since,
    ]
    if requested_by is not None:
        conds.append(CallRequest.requested_by == requested_by)
    return conds


async def count_created_since(
    session: AsyncSession,
    organization_id: uuid.UUID,
    since: datetime,
    *,
    requested_by: uuid.UUID | None = None,
    strict: bool = False,
) -> int:
    """Requests of the organisation (or of one requester in it) created at or after `since`
    (after it, when `strict`)."""
    conds = _created_since(organization_id, since, requested_by, strict)
    return int(
        await session.scalar(select(func.count()).select_from(CallRequest).where(*conds)) or 0
    )


async def nth_created_since(
    session: AsyncSession,
    organization_id: uuid.UUID,
    since: datetime,
    n: int,
    *,
    requested_by: uuid.UUID | None = None,
    strict: bool = False,
) -> datetime | None:
    """When the n-th oldest (0-based) of those requests was created."""
    conds = _created_since(organization_id, since, requested_by, strict)
    found: datetime | None = await session.scalar(
        select(CallRequest.created_at)
        .where(*conds)
        .order_by(CallRequest.created_at)
        .offset(n)
        .limit(1)
    )
    return found
