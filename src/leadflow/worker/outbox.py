"""The outbox: deliveries written in the business transaction, delivered by the worker.

A row is claimed with a conditional UPDATE (status due, lock expired) before delivery, so any
number of workers can race for it and only one sends. A crash after the claim leaves a lock that
expires after `LEADFLOW_OUTBOX_LOCK_SECONDS`; the periodic relay then hands the row out again.
Delivery handlers are registered per kind and must be idempotent for the same `delivery_key`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.claims import claim_returning
from leadflow.kit.clock import utcnow
from leadflow.models.outbox import MAX_LOGGED_ERRORS, OutboxMessage
from leadflow.worker.jobs import JobContext, enqueue_job, job

log = logging.getLogger("leadflow.outbox")

Handler = Callable[[JobContext, OutboxMessage], Awaitable[dict[str, Any]]]
FailureHook = Callable[[AsyncSession, OutboxMessage], Awaitable[None]]
_HANDLERS: dict[str, Handler] = {}
_ON_FAILURE: dict[str, FailureHook] = {}
DUE = ("pending", "retry")


class DeliverySkipped(Exception):
    """Raised by a handler for a delivery that can never succeed (no retry)."""


def register_handler(kind: str, handler: Handler, on_failure: FailureHook | None = None) -> None:
    """Deliver rows of `kind` with `handler`; `on_failure` runs when it finally fails."""
    _HANDLERS[kind] = handler
    if on_failure is not None:
        _ON_FAILURE[kind] = on_failure


async def add(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID | None,
    kind: str,
    delivery_key: str,
    payload: dict[str, Any],
    max_attempts: int = 3,
) -> OutboxMessage:
    """Write a delivery in the caller's transaction (once per key) and queue it after commit."""
    existing = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.delivery_key == delivery_key)
    )
    if existing is not None:
        return existing
    row = OutboxMessage(
        organization_id=organization_id,
        kind=kind,
        delivery_key=delivery_key,
        payload=payload,
        status="pending",
        attempts=0,
        max_attempts=max_attempts,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    enqueue_job(session, "outbox.deliver", str(row.id))
    return row


async def _claim(ctx: JobContext, message_id: uuid.UUID) -> OutboxMessage | None:
    now = utcnow()
    async with ctx.session_factory() as session:
        claimed = await claim_returning(
            session,
            OutboxMessage,
            (OutboxMessage.id,),
            OutboxMessage.id == message_id,
            OutboxMessage.status.in_(DUE),
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
            locked_until=now + timedelta(seconds=ctx.settings.outbox_lock_seconds),
            attempts=OutboxMessage.attempts + 1,
        )
        await session.commit()
        if claimed is None:
            return None
        return await session.get(OutboxMessage, message_id)


@job("outbox.deliver")
async def deliver(ctx: JobContext, message_id: str) -> str:
    """Deliver one outbox row if it is due and nobody else holds it; returns its status."""
    row = await _claim(ctx, uuid.UUID(message_id))
    if row is None:
        return "skipped"
    handler = _HANDLERS.get(row.kind)
    error: str | None = None
    result: dict[str, Any] | None = None
    permanent = False
    try:
        if handler is None:
            raise DeliverySkipped(f"no handler for kind {row.kind!r}")
        result = await handler(ctx, row)
    except DeliverySkipped as exc:
        error, permanent = str(exc), True
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        permanent = bool(getattr(exc, "permanent", False))
    now = utcnow()
    async with ctx.session_factory() as session:
        fresh = await session.get(OutboxMessage, row.id)
        assert fresh is not None
        fresh.locked_until = None
        if error is None:
            fresh.status = str((result or {}).pop("status", "sent"))
            fresh.result = result
            fresh.sent_at = now
            fresh.last_error = None
        else:
            fresh.last_error = error[:2000]
            # A new list: the JSON column is not mutation-tracked.
            logged = {"attempt": fresh.attempts, "at": now.isoformat(), "error": error[:500]}
            fresh.errors = [*(fresh.errors or []), logged][-MAX_LOGGED_ERRORS:]
            if permanent or fresh.attempts >= fresh.max_attempts:
                fresh.status = "failed"
                hook = _ON_FAILURE.get(fresh.kind)
                if hook is not None:
                    await hook(session, fresh)
                log.warning(
                    "delivery failed for good",
                    extra={"outbox_id": str(fresh.id), "kind": fresh.kind},
                )
            else:
                backoff = ctx.settings.outbox_backoff_seconds * (2 ** (fresh.attempts - 1))
                fresh.status = "retry"
                fresh.next_attempt_at = now + timedelta(seconds=backoff)
        await session.commit()
        return fresh.status


async def due_ids(ctx: JobContext, limit: int = 500) -> list[str]:
    """Rows that are due and not held by a live lock."""
    now = utcnow()
    async with ctx.session_factory() as session:
        rows = await session.scalars(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status.in_(DUE),
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.locked_until.is_(None), and_(OutboxMessage.locked_until < now)),
            )
            .order_by(OutboxMessage.next_attempt_at)
            .limit(limit)
        )
        return [str(r) for r in rows]


@job("outbox.relay")
async def relay(ctx: JobContext) -> int:
    """Deliver everything due (covers crashes between commit and enqueue, and retries)."""
    n = 0
    for message_id in await due_ids(ctx):
        await deliver(ctx, message_id)
        n += 1
    return n
