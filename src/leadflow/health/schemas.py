"""Answers of the admin health endpoints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field


class MetricType(StrEnum):
    """What `GET /admin/health/metrics` charts."""

    REQUEST_RATE = "request_rate"
    ERROR_RATE = "error_rate"
    LATENCY_P95 = "latency_p95"
    QUEUE_DEPTH = "queue_depth"
    OUTBOX_PENDING = "outbox_pending"
    FAILED_JOBS = "failed_jobs"
    EMAIL_BACKLOG = "email_backlog"
    WEBHOOK_BACKLOG = "webhook_backlog"
    WORKERS_ALIVE = "workers_alive"


# Per route group, from the request samples of the API processes.
REQUEST_METRICS = frozenset(
    {MetricType.REQUEST_RATE, MetricType.ERROR_RATE, MetricType.LATENCY_P95}
)
UNITS: dict[MetricType, str] = {
    MetricType.REQUEST_RATE: "requests/s",
    MetricType.ERROR_RATE: "ratio",
    MetricType.LATENCY_P95: "ms",
}


class DatabaseHealth(BaseModel):
    """The database answered, and how fast."""

    status: Literal["ok"]
    dialect: str
    latency_ms: float


class QueueHealth(BaseModel):
    """The job queue and the outbox."""

    backend: Literal["redis", "sqlite", "memory"]
    jobs_waiting: int | None = Field(description="Jobs queued to run now (null: unreachable)")
    jobs_scheduled: int | None = Field(description="Jobs queued for later (retries, timers)")
    outbox_pending: int = Field(description="Deliveries pending or waiting for a retry")
    outbox_oldest_due_seconds: float | None = Field(
        description="How long the longest-waiting due delivery has been due (null: none due)"
    )


class WorkerRead(BaseModel):
    """A worker process seen in the last 24 hours."""

    name: str
    started_at: datetime
    last_seen_at: datetime
    alive: bool


class WorkersHealth(BaseModel):
    """Worker heartbeats: alive = renewed within three heartbeat intervals."""

    alive: int
    heartbeat_seconds: int
    items: list[WorkerRead]


class JobsHealth(BaseModel):
    """Deliveries that failed for good (they stay until retried)."""

    failed: int
    failed_by_kind: dict[str, int]


class BacklogHealth(BaseModel):
    """Deliveries of one kind: not yet done, and failed for good."""

    backlog: int
    failed: int


class RouteGroupStats(BaseModel):
    """Requests of one route group over the window, across every API process."""

    route_group: str
    requests: int
    rate_per_second: float
    errors: int
    error_rate: float
    avg_ms: float
    p95_ms: float | None


class RequestsHealth(BaseModel):
    """Request figures of the last complete minutes."""

    window_minutes: int
    start: datetime
    end: datetime
    groups: list[RouteGroupStats]


class SamplerHealth(BaseModel):
    """The worker's minute sampler (feeds `/admin/health/metrics`)."""

    interval_seconds: int
    last_sample_at: datetime | None


class HealthWarning(BaseModel):
    """Something that needs a look."""

    code: str
    detail: str


class HealthRead(BaseModel):
    """The installation's health right now."""

    status: Literal["ok", "degraded"]
    checked_at: datetime
    version: str
    database: DatabaseHealth
    queue: QueueHealth
    workers: WorkersHealth
    jobs: JobsHealth
    email: BacklogHealth
    webhooks: BacklogHealth
    requests: RequestsHealth
    sampler: SamplerHealth
    warnings: list[HealthWarning]


class Point(BaseModel):
    """One step of a series: its start and value (null: nothing was measured)."""

    at: datetime
    value: float | None


class Series(BaseModel):
    """The points of one route group (request metrics) or of the installation (`null`)."""

    route_group: str | None
    points: list[Point]


class MetricSeries(BaseModel):
    """A time series for charts."""

    metric_type: MetricType
    unit: str
    time_range: str
    step_seconds: int
    start: datetime
    end: datetime
    series: list[Series]
