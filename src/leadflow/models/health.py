"""System health: request figures per minute and route group, the worker's per-minute samples,
and worker heartbeats. None of it belongs to an organisation: it describes the installation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin
from leadflow.db.types import UTCDateTime
from leadflow.kit.clock import utcnow
from leadflow.kit.requeststats import LATENCY_BOUNDS_MS


def _bin() -> Mapped[int]:
    return mapped_column(BigInteger, nullable=False, default=0)


class RequestSample(IdMixin, Base):
    """Requests of one route group in one minute, summed over every API process.

    Each process adds its own counts with one atomic `INSERT … ON CONFLICT DO UPDATE` per
    (minute, group), so N processes leave one row. `le_<n>ms` count the requests that took at
    most n ms (and more than the previous bound); `le_inf` the slower ones.
    """

    __tablename__ = "request_samples"
    __table_args__ = (UniqueConstraint("minute", "route_group"),)

    # Unix time in whole minutes (UTC): integer buckets of any width work alike on both engines.
    minute: Mapped[int] = mapped_column(BigInteger, nullable=False)
    route_group: Mapped[str] = mapped_column(String(60), nullable=False)
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_ms_sum: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    le_5ms: Mapped[int] = _bin()
    le_10ms: Mapped[int] = _bin()
    le_25ms: Mapped[int] = _bin()
    le_50ms: Mapped[int] = _bin()
    le_75ms: Mapped[int] = _bin()
    le_100ms: Mapped[int] = _bin()
    le_150ms: Mapped[int] = _bin()
    le_250ms: Mapped[int] = _bin()
    le_400ms: Mapped[int] = _bin()
    le_600ms: Mapped[int] = _bin()
    le_1000ms: Mapped[int] = _bin()
    le_1500ms: Mapped[int] = _bin()
    le_2500ms: Mapped[int] = _bin()
    le_5000ms: Mapped[int] = _bin()
    le_10000ms: Mapped[int] = _bin()
    le_inf: Mapped[int] = _bin()


# The bin columns in the order of `kit.requeststats`' bins.
BIN_COLUMNS: tuple[str, ...] = (*(f"le_{b}ms" for b in LATENCY_BOUNDS_MS), "le_inf")


class HealthSample(IdMixin, Base):
    """One value the worker measured at one minute (`queue_depth`, `failed_jobs`, …)."""

    __tablename__ = "health_samples"
    __table_args__ = (
        UniqueConstraint("metric", "minute"),
        Index("ix_health_samples_minute", "minute"),
    )

    minute: Mapped[int] = mapped_column(BigInteger, nullable=False)
    metric: Mapped[str] = mapped_column(String(40), nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)


class WorkerHeartbeat(IdMixin, Base):
    """A worker process's sign of life, renewed by its ticker every few seconds."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(120), nullable=False, unique=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, index=True
    )
