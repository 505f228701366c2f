"""Queries of the health figures. They describe the installation, so none is per organisation."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.health import BIN_COLUMNS, HealthSample, RequestSample, WorkerHeartbeat
from leadflow.models.organization import Organization
from leadflow.models.outbox import OutboxMessage
from leadflow.models.webhook import WebhookBatch, WebhookDelivery
from leadflow.worker.heartbeat import alive_since
from leadflow.worker.outbox import DUE

FAILED = "failed"
EMAIL = "email"
# Webhook deliveries are outbox rows whose kind starts with this (e.g. `webhook`,
# `webhook.deliver`): the figures need no import of the webhooks module.
WEBHOOK_PREFIX = "webhook"


def is_webhook(kind: str) -> bool:
    """Whether outbox rows of `kind` are webhook deliveries."""
    return kind.startswith(WEBHOOK_PREFIX)


@dataclass
class OutboxFigures:
    """Outbox rows not yet delivered and failed for good, by kind."""

    pending_by_kind: dict[str, int] = field(default_factory=dict)
    failed_by_kind: dict[str, int] = field(default_factory=dict)
    oldest_due_at: datetime | None = None

    @property
    def pending(self) -> int:
        """Every pending or retrying row."""
        return sum(self.pending_by_kind.values())

    @property
    def failed(self) -> int:
        """Every failed row."""
        return sum(self.failed_by_kind.values())

    def pending_of(self, kind: str | None = None, *, webhooks: bool = False) -> int:
        """Pending rows of one kind, or of the webhook kinds."""
        return sum(
            n for k, n in self.pending_by_kind.items() if k == kind or (webhooks and is_webhook(k))
        )

    def failed_of(self, kind: str | None = None, *, webhooks: bool = False) -> int:
        """Failed rows of one kind, or of the webhook kinds."""
        return sum(
            n for k, n in self.failed_by_kind.items() if k == kind or (webhooks and is_webhook(k))
        )


async def webhook_figures(session: AsyncSession) -> tuple[int, int]:
    """(deliveries waiting — queued or retrying, and those of batches the worker has not
    expanded yet —, deliveries failed for good) of the webhook tables."""
    d = WebhookDelivery
    rows = await session.execute(
        select(d.status, func.count())
        .where(d.status.in_(("pending", "retry", "failed")))
        .group_by(d.status)
    )
    by_status = {status: int(n) for status, n in rows.all()}
    batched = await session.scalar(select(func.coalesce(func.sum(WebhookBatch.size), 0)))
    waiting = by_status.get("pending", 0) + by_status.get("retry", 0) + int(batched or 0)
    return waiting, by_status.get("failed", 0)


async def outbox_figures(session: AsyncSession) -> OutboxFigures:
    """Counts of the outbox by kind. Two statements, each served by its partial index
    (`ix_outbox_pending`, `ix_outbox_failed`): delivered rows are never read."""
    out = OutboxFigures()
    pending = await session.execute(
        select(OutboxMessage.kind, func.count(), func.min(OutboxMessage.next_attempt_at))
        .where(OutboxMessage.status.in_(DUE))
        .group_by(OutboxMessage.kind)
    )
    for kind, count, oldest in pending:
        out.pending_by_kind[kind] = int(count)
        if oldest is not None and (out.oldest_due_at is None or oldest < out.oldest_due_at):
            out.oldest_due_at = oldest
    failed = await session.execute(
        select(OutboxMessage.kind, func.count())
        .where(OutboxMessage.status == FAILED)
        .group_by(OutboxMessage.kind)
    )
    out.failed_by_kind = {kind: int(count) for kind, count in failed}
    return out


async def recent_workers(session: AsyncSession, since: datetime) -> list[WorkerHeartbeat]:
    """Workers that beat at or after `since`, by name."""
    rows = await session.scalars(
        select(WorkerHeartbeat)
        .where(WorkerHeartbeat.last_seen_at >= since)
        .order_by(WorkerHeartbeat.name)
    )
    return list(rows)


async def workers_alive(session: AsyncSession, now: datetime, heartbeat_seconds: int) -> int:
    """How many workers beat within the last three heartbeat intervals."""
    count = await session.scalar(
        select(func.count())
        .select_from(WorkerHeartbeat)
        .where(WorkerHeartbeat.last_seen_at >= alive_since(now, heartbeat_seconds))
    )
    return int(count or 0)


async def last_sample_minute(session: AsyncSession) -> int | None:
    """The latest minute the sampler stored."""
    minute = await session.scalar(select(func.max(HealthSample.minute)))
    return None if minute is None else int(minute)


@dataclass
class RequestTotals:
    """Summed request figures of a route group (and a step)."""

    requests: int
    errors: int
    latency_ms_sum: float
    bins: list[int]


def _sums() -> list[Any]:
    """The summable columns: requests, errors, the latency sum, then the bins."""
    names = ("requests", "errors", "latency_ms_sum", *BIN_COLUMNS)
    return [getattr(RequestSample, n) for n in names]


def _totals(values: Sequence[Any]) -> RequestTotals:
    # PostgreSQL sums bigints as numeric (Decimal): back to plain numbers.
    requests, errors, latency, *bins = (v or 0 for v in values)
    return RequestTotals(int(requests), int(errors), float(latency), [int(b) for b in bins])


async def request_totals(
    session: AsyncSession, start_minute: int, end_minute: int
) -> dict[str, RequestTotals]:
    """Request figures per route group for the minutes [start, end)."""
    rows = await session.execute(
        select(RequestSample.route_group, *(func.sum(c) for c in _sums()))
        .where(RequestSample.minute >= start_minute, RequestSample.minute < end_minute)
        .group_by(RequestSample.route_group)
    )
    return {row[0]: _totals(row[1:]) for row in rows}


async def request_series(
    session: AsyncSession, start_minute: int, end_minute: int, step_minutes: int
) -> dict[tuple[int, str], RequestTotals]:
    """Request figures per (step start minute, route group) for the minutes [start, end)."""
    # Grouped through a subquery: the step is a bind parameter, and PostgreSQL does not
    # match two separately bound copies of one expression in SELECT and GROUP BY.
    inner = (
        select(
            (RequestSample.minute - RequestSample.minute % step_minutes).label("step"),
            RequestSample.route_group,
            *(c.label(c.key) for c in _sums()),
        )
        .where(RequestSample.minute >= start_minute, RequestSample.minute < end_minute)
        .subquery()
    )
    names = ["requests", "errors", "latency_ms_sum", *BIN_COLUMNS]
    rows = await session.execute(
        select(inner.c.step, inner.c.route_group, *(func.sum(inner.c[n]) for n in names)).group_by(
            inner.c.step, inner.c.route_group
        )
    )
    return {(int(row[0]), row[1]): _totals(row[2:]) for row in rows}


async def gauge_series(
    session: AsyncSession,
    metric: str,
    start_minute: int,
    end_minute: int,
    step_minutes: int,
    *,
    lowest: bool,
) -> dict[int, float]:
    """The highest (or, `lowest`, the smallest) sample of `metric` per step start minute."""
    inner = (
        select(
            (HealthSample.minute - HealthSample.minute % step_minutes).label("step"),
            HealthSample.value,
        )
        .where(
            HealthSample.metric == metric,
            HealthSample.minute >= start_minute,
            HealthSample.minute < end_minute,
        )
        .subquery()
    )
    pick = func.min if lowest else func.max
    rows = await session.execute(select(inner.c.step, pick(inner.c.value)).group_by(inner.c.step))
    return {int(step): float(value) for step, value in rows}


async def oldest_organization(session: AsyncSession) -> uuid.UUID | None:
    """The organisation created first (the operator's, unless configured otherwise)."""
    return await session.scalar(
        select(Organization.id).order_by(Organization.created_at, Organization.id).limit(1)
    )
