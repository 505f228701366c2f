"""The daily pruning job: drops rows past their retention period, a batch of ids at a time.

Retention (settings, in days): ended login sessions (`LEADFLOW_RETENTION_SESSIONS_DAYS`, counted
from when they were revoked or expired; their refresh tokens go with them), delivered outbox
rows (`LEADFLOW_RETENTION_OUTBOX_DAYS`, counted from delivery; pending, retrying and failed
rows stay), call request events (`LEADFLOW_RETENTION_CALL_EVENTS_DAYS`), the health figures
(request samples, the worker's minute samples, heartbeats of workers gone that long:
`LEADFLOW_RETENTION_HEALTH_DAYS`; also the claims of periodic job runs by their interval,
each job's newest kept), webhook attempts and delivered or finally failed webhook deliveries
(`LEADFLOW_RETENTION_WEBHOOKS_DAYS`, counted from when they were made). The audit log is never
pruned.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.kit.clock import utcnow
from leadflow.kit.requeststats import minute_of
from leadflow.models.auth_session import AuthSession
from leadflow.models.call_request import CallRequestEvent
from leadflow.models.health import HealthSample, RequestSample, WorkerHeartbeat
from leadflow.models.outbox import OutboxMessage, PeriodicRun
from leadflow.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from leadflow.worker.jobs import JobContext, job
from leadflow.worker.outbox import DUE

log = logging.getLogger("leadflow.worker")


def _ended_sessions(cutoff: datetime) -> ColumnElement[bool]:
    # Each arm has its own index; NULL revoked_at never compares true.
    return or_(AuthSession.revoked_at < cutoff, AuthSession.expires_at < cutoff)


def _delivered_outbox(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        OutboxMessage.sent_at.is_not(None),
        OutboxMessage.sent_at < cutoff,
        OutboxMessage.status.not_in(DUE),
    )


def _old_call_events(cutoff: datetime) -> ColumnElement[bool]:
    return CallRequestEvent.created_at < cutoff


def _old_request_samples(cutoff: datetime) -> ColumnElement[bool]:
    return RequestSample.minute < minute_of(cutoff)


def _old_health_samples(cutoff: datetime) -> ColumnElement[bool]:
    return HealthSample.minute < minute_of(cutoff)


def _gone_workers(cutoff: datetime) -> ColumnElement[bool]:
    return WorkerHeartbeat.last_seen_at < cutoff


def _uuid7_floor(cutoff: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of `cutoff`'s millisecond: ids below it were made before it."""
    return uuid.UUID(int=int(cutoff.timestamp() * 1000) << 80)


def _old_webhook_attempts(cutoff: datetime) -> ColumnElement[bool]:
    # By id (UUIDv7, time-ordered): the primary key answers the range without another index.
    return WebhookAttempt.id < _uuid7_floor(cutoff)


def _finished_webhook_deliveries(cutoff: datetime) -> ColumnElement[bool]:
    # Delivered or failed for good (queued ones stay, however old), and any whose endpoint is
    # gone with its organisation.
    return or_(
        and_(
            WebhookDelivery.id < _uuid7_floor(cutoff),
            WebhookDelivery.status.in_(("delivered", "failed")),
        ),
        ~exists().where(WebhookEndpoint.id == WebhookDelivery.endpoint_id),
    )


# (name, model, condition for a cutoff, retention setting)
TARGETS: list[tuple[str, Any, Callable[[datetime], ColumnElement[bool]], str]] = [
    ("sessions", AuthSession, _ended_sessions, "retention_sessions_days"),
    ("outbox", OutboxMessage, _delivered_outbox, "retention_outbox_days"),
    ("call_events", CallRequestEvent, _old_call_events, "retention_call_events_days"),
    ("request_samples", RequestSample, _old_request_samples, "retention_health_days"),
    ("health_samples", HealthSample, _old_health_samples, "retention_health_days"),
    ("worker_heartbeats", WorkerHeartbeat, _gone_workers, "retention_health_days"),
    ("webhook_attempts", WebhookAttempt, _old_webhook_attempts, "retention_webhooks_days"),
    (
        "webhook_deliveries",
        WebhookDelivery,
        _finished_webhook_deliveries,
        "retention_webhooks_days",
    ),
]


async def prune_batch(
    session: AsyncSession, model: Any, where: ColumnElement[bool], limit: int
) -> int:
    """Delete up to `limit` rows of `model` matching `where`; returns how many went.

    Ids first, then a delete by id: a bounded statement (and lock) however many rows match.
    """
    ids_query: Select[tuple[uuid.UUID]] = select(model.id).where(where).limit(limit)
    ids = list(await session.scalars(ids_query))
    if ids:
        await session.execute(
            delete(model).where(model.id.in_(ids)).execution_options(synchronize_session=False)
        )
    return len(ids)


async def prune(ctx: JobContext, now: datetime | None = None) -> dict[str, int]:
    """Prune every target past its retention, one committed batch after another."""
    settings: Settings = ctx.settings
    now = now or utcnow()
    batch = settings.prune_batch_size
    totals: dict[str, int] = {}
    for name, model, condition, setting in TARGETS:
        where = condition(now - timedelta(days=getattr(settings, setting)))
        total = 0
        while True:
            # One transaction per batch: locks stay short and other writers (on SQLite the
            # one write lock) get their turn between batches.
            async with ctx.session_factory() as session:
                deleted = await prune_batch(session, model, where, batch)
                await session.commit()
            total += deleted
            if deleted < batch:
                break
        totals[name] = total
    totals["periodic_runs"] = await _prune_periodic_runs(
        ctx, now - timedelta(days=settings.retention_health_days), batch
    )
    if any(totals.values()):
        log.info("pruned", extra=totals)
    return totals


async def _prune_periodic_runs(ctx: JobContext, cutoff: datetime, batch: int) -> int:
    """Claims of periodic runs whose interval began before `cutoff` (every ticker claims a
    row per job and interval: ~17,000 a day for a relay every 5 s). Job by job, so each batch
    is a range of the primary key (name, slot). A job's newest claim always stays: its
    interval may still be running (an interval can be longer than the retention), and
    deleting it would let a worker claim that interval again."""
    async with ctx.session_factory() as session:
        names = list(await session.scalars(select(PeriodicRun.name).distinct()))
        await session.commit()
    total = 0
    for name in sorted(names):
        while True:
            async with ctx.session_factory() as session:
                newest = select(func.max(PeriodicRun.slot)).where(PeriodicRun.name == name)
                slots = list(
                    await session.scalars(
                        select(PeriodicRun.slot)
                        .where(
                            PeriodicRun.name == name,
                            PeriodicRun.slot < cutoff,
                            PeriodicRun.slot < newest.scalar_subquery(),
                        )
                        .order_by(PeriodicRun.slot)
                        .limit(batch)
                    )
                )
                deleted = 0
                if slots:
                    result = await session.execute(
                        delete(PeriodicRun)
                        .where(PeriodicRun.name == name, PeriodicRun.slot.in_(slots))
                        .execution_options(synchronize_session=False)
                    )
                    deleted = int(getattr(result, "rowcount", 0) or 0)
                await session.commit()
            total += deleted
            # Stop on a short batch, and on one that deleted nothing (never spin).
            if len(slots) < batch or deleted == 0:
                break
    return total


@job("maintenance.prune")
async def prune_job(ctx: JobContext) -> dict[str, int]:
    """The periodic pruning (every LEADFLOW_PRUNE_SECONDS, once across all workers)."""
    return await prune(ctx)
