"""Queries of the webhooks. Endpoints are read within one organisation; deliveries and attempts
through their endpoint's organisation."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leadflow.db.dialect import bulk_insert, update_by_id
from leadflow.kit.pagination import PageParams
from leadflow.models.webhook import WebhookAttempt, WebhookBatch, WebhookDelivery, WebhookEndpoint
from leadflow.webhooks.catalogue import TEST_EVENT

B = WebhookBatch
D = WebhookDelivery
E = WebhookEndpoint
# Literal values, so the partial indexes' predicate (status IN ('pending', 'retry')) is seen
# to hold: with bound parameters neither planner can prove it.
DUE_STATUSES: tuple[ColumnElement[str], ...] = (
    literal_column("'pending'"),
    literal_column("'retry'"),
)
DELIVERY_COLUMNS = (
    "id",
    "endpoint_id",
    "message_id",
    "event_type",
    "ordering_key",
    "body",
    "occurred_at",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


def delivery_row(
    row_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    message_id: uuid.UUID,
    event_type: str,
    key: uuid.UUID | None,
    body: str,
    occurred_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    """A new delivery as inserted."""
    return {
        "id": row_id,
        "endpoint_id": endpoint_id,
        "message_id": message_id,
        "event_type": event_type,
        "ordering_key": key,
        "body": body,
        "occurred_at": occurred_at,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def is_due(table: Any) -> ColumnElement[bool]:
    """`status IN ('pending', 'retry')` of `table` (the delivery model or an alias)."""
    return table.status.in_(DUE_STATUSES)


async def active_subscriptions(
    session: AsyncSession, organization_id: uuid.UUID
) -> list[tuple[uuid.UUID, list[str]]]:
    """(id, events) of the organisation's active endpoints: the one query an event costs."""
    rows = await session.execute(
        select(E.id, E.events).where(E.organization_id == organization_id, E.status == "active")
    )
    return [(r[0], list(r[1] or [])) for r in rows]


async def insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert delivery rows in one statement (COPY on PostgreSQL)."""
    await bulk_insert(session, D, rows, columns=DELIVERY_COLUMNS)


async def insert_attempts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert attempt rows (one executemany)."""
    if rows:
        await session.execute(insert(WebhookAttempt), rows)


_OUTCOME = ("success", "status_code", "latency_ms", "response_excerpt", "error")
_SETTLED = (
    "status",
    "next_attempt_at",
    "delivered_at",
    "last_status_code",
    "last_error",
    "locked_until",
)


async def complete_attempts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write the outcomes into attempt rows written with their claim (`id`, `success`,
    `status_code`, `latency_ms`, `response_excerpt`, `error`). `attempted_at` stays the
    claim's: it is in the index the log is read by, so changing it would make every
    completion a full row update."""
    await update_by_id(session, WebhookAttempt, _OUTCOME, rows)


async def settle_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Move claimed deliveries on (`id`, `status`, `next_attempt_at`, `delivered_at`,
    `last_status_code`, `last_error`, `locked_until`)."""
    await update_by_id(session, D, _SETTLED, rows)


async def delete_deliveries(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """Delete an endpoint's deliveries (their attempts go with them) and unexpanded batches."""
    for model in (D, B):
        await session.execute(
            delete(model)
            .where(model.endpoint_id == endpoint_id)
            .execution_options(synchronize_session=False)
        )


async def insert_batches(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert batch rows (one per endpoint of a large event set)."""
    await session.execute(insert(B), rows)


async def next_batches(session: AsyncSession, limit: int) -> list[uuid.UUID]:
    """The oldest unexpanded batches."""
    return list(await session.scalars(select(B.id).order_by(B.id).limit(limit)))


async def take_batch(session: AsyncSession, batch_id: uuid.UUID) -> Any | None:
    """Remove a batch and return it (one DELETE … RETURNING: of concurrent workers, one
    gets it); its deliveries are inserted in the same transaction."""
    result = await session.execute(
        delete(B)
        .where(B.id == batch_id)
        .returning(B.endpoint_id, B.event_type, B.occurred_at, B.created_at, B.items)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none()


async def count_endpoints(session: AsyncSession, organization_id: uuid.UUID) -> int:
    """How many endpoints the organisation has."""
    n = await session.scalar(
        select(func.count()).select_from(E).where(E.organization_id == organization_id)
    )
    return int(n or 0)


async def get_endpoint(
    session: AsyncSession,
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> WebhookEndpoint | None:
    """The organisation's endpoint, or None."""
    stmt = select(E).where(E.id == endpoint_id, E.organization_id == organization_id)
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def list_endpoints(
    session: AsyncSession, organization_id: uuid.UUID, page: PageParams
) -> tuple[list[WebhookEndpoint], int]:
    """A page of the organisation's endpoints, oldest first."""
    where = E.organization_id == organization_id
    total = await session.scalar(select(func.count()).select_from(E).where(where))
    rows = await session.scalars(
        select(E).where(where).order_by(E.created_at, E.id).limit(page.limit).offset(page.offset)
    )
    return list(rows), int(total or 0)


async def endpoint_summary(
    session: AsyncSession, organization_id: uuid.UUID
) -> tuple[int, int, datetime | None]:
    """(active, disabled, last success) over the organisation's endpoints."""
    row = (
        await session.execute(
            select(
                func.count().filter(E.status == "active"),
                func.count().filter(E.status != "active"),
                func.max(E.last_success_at),
            ).where(E.organization_id == organization_id)
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0), row[2]


async def deliveries_page(
    session: AsyncSession, endpoint_id: uuid.UUID, page: PageParams, status: str | None
) -> tuple[list[WebhookDelivery], int]:
    """A page of an endpoint's deliveries, newest first."""
    conds = [D.endpoint_id == endpoint_id]
    if status is not None:
        conds.append(D.status == status)
    total = await session.scalar(select(func.count()).select_from(D).where(*conds))
    rows = await session.scalars(
        select(D).where(*conds).order_by(D.id.desc()).limit(page.limit).offset(page.offset)
    )
    return list(rows), int(total or 0)


async def attempts_for(
    session: AsyncSession, delivery_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """The attempts of the given deliveries, oldest first."""
    out: dict[uuid.UUID, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return out
    rows = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
    )
    for a in rows:
        out[a.delivery_id].append(a)
    return out


async def get_delivery(
    session: AsyncSession, organization_id: uuid.UUID, delivery_id: uuid.UUID
) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
    """A delivery of one of the organisation's endpoints, with that endpoint."""
    row = (
        await session.execute(
            select(D, E)
            .join(E, E.id == D.endpoint_id)
            .where(D.id == delivery_id, E.organization_id == organization_id)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


# Literal, as in DUE_STATUSES: the partial index of claimed tests is then seen to apply.
_IS_TEST: ColumnElement[str] = literal_column(f"'{TEST_EVENT}'")


async def fail_abandoned_tests(session: AsyncSession, cutoff: datetime, error: str) -> int:
    """Settle as failed the test events whose sender stopped before it recorded the answer
    (a request cut off or crashed; a worker that stopped while sending a replayed test):
    their claim ran out before `cutoff`. A test is never sent again by itself. Returns how
    many. Reads only the partial index `ix_webhook_deliveries_test_claims`."""
    result = await session.execute(
        update(D)
        .where(D.event_type == _IS_TEST, is_due(D), D.locked_until < cutoff)
        .values(status="failed", last_error=error, locked_until=None, next_attempt_at=cutoff)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def due_ids(session: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    """Deliveries that may go now: due, not held by a live claim, their endpoint active, and
    first in line — no earlier delivery about the same subject to the same endpoint is still
    queued (a failed one no longer holds the line), and no earlier batch of the endpoint is
    still waiting to be expanded (it may hold an earlier delivery about the subject)."""
    earlier = aliased(D)
    blocked = (
        select(earlier.id)
        .where(
            earlier.endpoint_id == D.endpoint_id,
            earlier.ordering_key == D.ordering_key,
            is_due(earlier),
            earlier.id < D.id,
        )
        .exists()
    )
    rows = await session.scalars(
        select(D.id)
        .join(E, E.id == D.endpoint_id)
        .where(
            is_due(D),
            D.next_attempt_at <= now,
            or_(D.locked_until.is_(None), D.locked_until < now),
            E.status == "active",
            # A claimed test event is its sender's (fail_abandoned_tests settles one whose
            # claim ran out); a replayed one, not claimed yet, goes like any delivery.
            or_(D.locked_until.is_(None), D.event_type != TEST_EVENT),
            ~blocked,
            ~select(B.id).where(B.endpoint_id == D.endpoint_id, B.id < D.id).exists(),
        )
        .order_by(D.next_attempt_at, D.id)
        .limit(limit)
    )
    return list(rows)


async def claim(
    session: AsyncSession, ids: Sequence[uuid.UUID], now: datetime, lock_until: datetime
) -> list[Any]:
    """Take the deliveries of `ids` still free (one UPDATE; concurrent workers each win a
    disjoint part) and count the attempt; the won rows."""
    if not ids:
        return []
    result = await session.execute(
        update(D)
        .where(
            D.id.in_(ids),
            is_due(D),
            D.next_attempt_at <= now,
            or_(D.locked_until.is_(None), D.locked_until < now),
        )
        .values(locked_until=lock_until, attempts=D.attempts + 1)
        .returning(
            D.id, D.endpoint_id, D.message_id, D.event_type, D.body, D.occurred_at, D.attempts
        )
        .execution_options(synchronize_session=False)
    )
    return list(result.all())


async def endpoints_by_id(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, WebhookEndpoint]:
    """Endpoints by id (any organisation: the worker serves them all)."""
    if not ids:
        return {}
    rows = await session.scalars(select(E).where(E.id.in_(set(ids))))
    return {e.id: e for e in rows}
