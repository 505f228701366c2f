"""System health: the installation's figures right now, the worker's minute samples, and their
history as time series.

The figures describe the whole installation (every organisation's deliveries, every worker,
every API process), so only the operator's admins see them: the admins of
`LEADFLOW_OPERATOR_ORGANIZATION_ID`, or, when that is not set, of the oldest organisation
(the one created when Leadflow was installed). Organisations that signed up later never do.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import __version__
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.db.dialect import dialect_name, upsert
from leadflow.db.types import new_id
from leadflow.health import repository as repo
from leadflow.health.errors import (
    NO_WORKER_ALIVE,
    OUTBOX_STALLED,
    QUEUE_UNREACHABLE,
    SAMPLER_BEHIND,
    InvalidTimeRange,
    OperatorOnly,
)
from leadflow.health.schemas import (
    REQUEST_METRICS,
    UNITS,
    BacklogHealth,
    DatabaseHealth,
    HealthRead,
    HealthWarning,
    JobsHealth,
    MetricSeries,
    MetricType,
    Point,
    QueueHealth,
    RequestsHealth,
    RouteGroupStats,
    SamplerHealth,
    Series,
    WorkerRead,
    WorkersHealth,
)
from leadflow.kit.requeststats import minute_of, quantile_ms
from leadflow.models.health import HealthSample
from leadflow.worker.heartbeat import alive_since
from leadflow.worker.jobs import JobQueue, RecordingQueue

log = logging.getLogger("leadflow.health")

# The overview's request figures: the last complete minutes (the current one is still open
# in every process and reaches the database only when it is over).
WINDOW_MINUTES = 5
# A due delivery waiting this long means nobody delivers (the relay runs every few seconds).
STALLED_SECONDS = 600
RECENT_WORKERS = timedelta(hours=24)
QUEUE_TIMEOUT_SECONDS = 2.0
# Time series: the smallest of these steps (minutes) that keeps a range within MAX_POINTS.
STEPS_MINUTES = (1, 5, 15, 60, 180, 360, 1440)
MAX_POINTS = 360
MIN_RANGE_MINUTES = 5
_RANGE = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}


async def require_operator(session: AsyncSession, settings: Settings, actor: Actor) -> None:
    """403 `operator_only` unless the actor belongs to the operator's organisation."""
    operator = settings.operator_organization_id or await repo.oldest_organization(session)
    if actor.organization_id != operator:
        raise OperatorOnly(
            "System health describes the whole installation: only the operator "
            "organisation's admins see it"
        )


def _at(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def queue_depth(queue: JobQueue) -> tuple[int, int] | None:
    """Jobs waiting and scheduled in the queue; None when it does not answer in time."""
    try:
        async with asyncio.timeout(QUEUE_TIMEOUT_SECONDS):
            return await asyncio.to_thread(queue.depth)
    except Exception:
        log.warning("the job queue did not report its depth", exc_info=True)
        return None


def _backend(settings: Settings, queue: JobQueue) -> Literal["redis", "sqlite", "memory"]:
    if isinstance(queue, RecordingQueue):
        return "memory"
    return "redis" if settings.redis_url else "sqlite"


async def _database(session: AsyncSession) -> DatabaseHealth:
    started = time.perf_counter()
    await session.execute(text("SELECT 1"))
    latency = (time.perf_counter() - started) * 1000
    return DatabaseHealth(
        status="ok", dialect=dialect_name(session), latency_ms=_round(latency) or 0.0
    )


async def _requests(session: AsyncSession, now: datetime) -> RequestsHealth:
    end = minute_of(now)
    start = end - WINDOW_MINUTES
    seconds = WINDOW_MINUTES * 60
    groups = []
    for group, t in sorted((await repo.request_totals(session, start, end)).items()):
        if not t.requests:
            continue
        groups.append(
            RouteGroupStats(
                route_group=group,
                requests=t.requests,
                rate_per_second=round(t.requests / seconds, 3),
                errors=t.errors,
                error_rate=round(t.errors / t.requests, 4),
                avg_ms=round(t.latency_ms_sum / t.requests, 3),
                p95_ms=_round(quantile_ms(t.bins, 0.95)),
            )
        )
    return RequestsHealth(
        window_minutes=WINDOW_MINUTES, start=_at(start), end=_at(end), groups=groups
    )


async def overview(
    session: AsyncSession, *, settings: Settings, queue: JobQueue, now: datetime
) -> HealthRead:
    """Database, queue, workers, failed jobs, email and webhook backlog, request figures."""
    database = await _database(session)
    depth = await queue_depth(queue)
    outbox = await repo.outbox_figures(session)
    hooks_waiting, hooks_failed = await repo.webhook_figures(session)
    hb = settings.heartbeat_seconds
    alive_from = alive_since(now, hb)
    workers = [
        WorkerRead(
            name=w.name,
            started_at=w.started_at,
            last_seen_at=w.last_seen_at,
            alive=w.last_seen_at >= alive_from,
        )
        for w in await repo.recent_workers(session, now - RECENT_WORKERS)
    ]
    alive = [w for w in workers if w.alive]
    last_minute = await repo.last_sample_minute(session)
    oldest_due = (
        max((now - outbox.oldest_due_at).total_seconds(), 0.0)
        if outbox.oldest_due_at is not None and outbox.oldest_due_at <= now
        else None
    )

    warnings: list[HealthWarning] = []
    if not alive:
        warnings.append(
            HealthWarning(
                code=NO_WORKER_ALIVE,
                detail=f"No worker renewed its heartbeat in the last {3 * hb} seconds: "
                "jobs, emails and webhooks are not processed",
            )
        )
    if oldest_due is not None and oldest_due > STALLED_SECONDS:
        warnings.append(
            HealthWarning(
                code=OUTBOX_STALLED,
                detail=f"A delivery has been due for {int(oldest_due)} seconds",
            )
        )
    behind = 3 * settings.health_sample_seconds
    if (
        alive
        and min(w.started_at for w in alive) < now - timedelta(seconds=behind)
        and (last_minute is None or (minute_of(now) - last_minute) * 60 > behind)
    ):
        warnings.append(
            HealthWarning(
                code=SAMPLER_BEHIND,
                detail=f"The minute sampler has stored nothing for more than {behind} seconds",
            )
        )
    if depth is None:
        warnings.append(
            HealthWarning(code=QUEUE_UNREACHABLE, detail="The job queue did not report its depth")
        )

    return HealthRead(
        status="degraded" if warnings else "ok",
        checked_at=now,
        version=__version__,
        database=database,
        queue=QueueHealth(
            backend=_backend(settings, queue),
            jobs_waiting=None if depth is None else depth[0],
            jobs_scheduled=None if depth is None else depth[1],
            outbox_pending=outbox.pending,
            outbox_oldest_due_seconds=_round(oldest_due),
        ),
        workers=WorkersHealth(alive=len(alive), heartbeat_seconds=hb, items=workers),
        jobs=JobsHealth(
            failed=outbox.failed, failed_by_kind=dict(sorted(outbox.failed_by_kind.items()))
        ),
        email=BacklogHealth(
            backlog=outbox.pending_of(repo.EMAIL), failed=outbox.failed_of(repo.EMAIL)
        ),
        webhooks=BacklogHealth(
            backlog=outbox.pending_of(webhooks=True) + hooks_waiting,
            failed=outbox.failed_of(webhooks=True) + hooks_failed,
        ),
        requests=await _requests(session, now),
        sampler=SamplerHealth(
            interval_seconds=settings.health_sample_seconds,
            last_sample_at=None if last_minute is None else _at(last_minute),
        ),
        warnings=warnings,
    )


# ---- the worker's minute sampler --------------------------------------------------------


async def take_sample(
    session: AsyncSession,
    *,
    settings: Settings,
    depth: tuple[int, int] | None,
    now: datetime,
) -> dict[str, float]:
    """Store this minute's figures (once: a second run in the same minute changes nothing)."""
    outbox = await repo.outbox_figures(session)
    values: dict[str, float] = {
        MetricType.OUTBOX_PENDING: outbox.pending,
        MetricType.FAILED_JOBS: outbox.failed,
        MetricType.EMAIL_BACKLOG: outbox.pending_of(repo.EMAIL),
        MetricType.WEBHOOK_BACKLOG: outbox.pending_of(webhooks=True)
        + (await repo.webhook_figures(session))[0],
        MetricType.WORKERS_ALIVE: await repo.workers_alive(
            session, now, settings.heartbeat_seconds
        ),
    }
    if depth is not None:
        values[MetricType.QUEUE_DEPTH] = depth[0]
    minute = minute_of(now)
    await upsert(
        session,
        HealthSample,
        [
            {"id": new_id(), "minute": minute, "metric": str(metric), "value": float(value)}
            for metric, value in values.items()
        ],
        key=("metric", "minute"),
    )
    return {str(k): v for k, v in values.items()}


# ---- time series ------------------------------------------------------------------------


def range_minutes(time_range: str, retention_days: int) -> int:
    """`30m`, `6h`, `7d` … in minutes; 422 `invalid_time_range` unless between 5 minutes and
    the retention of the samples."""
    match = _RANGE.match(time_range)
    limit = retention_days * 1440
    if match is None:
        raise InvalidTimeRange(
            f"time_range must be a number followed by m, h or d (e.g. 1h, 24h, 7d), "
            f"not {time_range[:40]!r}"
        )
    minutes = int(match.group(1)) * _UNIT_MINUTES[match.group(2)]
    if not MIN_RANGE_MINUTES <= minutes <= limit:
        raise InvalidTimeRange(
            f"time_range must lie between {MIN_RANGE_MINUTES}m and {retention_days}d "
            "(samples are kept that long)"
        )
    return minutes


def step_for(minutes: int) -> int:
    """The step (minutes) of a range: the finest that needs at most MAX_POINTS points."""
    for step in STEPS_MINUTES:
        if math.ceil(minutes / step) <= MAX_POINTS:
            return step
    return STEPS_MINUTES[-1]


async def series(
    session: AsyncSession,
    *,
    settings: Settings,
    metric: MetricType,
    time_range: str,
    now: datetime,
) -> MetricSeries:
    """`metric` over the last `time_range`, in steps aligned to UTC multiples of the step;
    the last step holds `now`."""
    minutes = range_minutes(time_range, settings.retention_health_days)
    step = step_for(minutes)
    end = (minute_of(now) // step + 1) * step
    start = end - math.ceil(minutes / step) * step
    starts = list(range(start, end, step))
    out: list[Series] = []
    if metric in REQUEST_METRICS:
        data = await repo.request_series(session, start, end, step)
        for group in sorted({g for _, g in data}):
            points = []
            for at in starts:
                t = data.get((at, group))
                value: float | None
                if metric is MetricType.REQUEST_RATE:
                    value = 0.0 if t is None else t.requests / (step * 60)
                elif t is None or not t.requests:
                    value = None
                elif metric is MetricType.ERROR_RATE:
                    value = t.errors / t.requests
                else:
                    value = quantile_ms(t.bins, 0.95)
                points.append(Point(at=_at(at), value=_round(value)))
            out.append(Series(route_group=group, points=points))
    else:
        gauges = await repo.gauge_series(
            session, str(metric), start, end, step, lowest=metric is MetricType.WORKERS_ALIVE
        )
        out.append(
            Series(
                route_group=None,
                points=[Point(at=_at(at), value=gauges.get(at)) for at in starts],
            )
        )
    return MetricSeries(
        metric_type=metric,
        unit=UNITS.get(metric, "count"),
        time_range=time_range,
        step_seconds=step * 60,
        start=_at(start),
        end=_at(end),
        series=out,
    )
