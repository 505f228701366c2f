"""Reports: saved definitions, their schedules, their runs and the files the runs produced.

A report, its schedules and its runs belong to the user who created them (`owner_id`); the
rows a run reads are those the owner may see at run time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin
from leadflow.db.types import JSONType, UTCDateTime
from leadflow.kit.clock import utcnow


class Report(IdMixin, TimestampMixin, Base):
    """A saved report definition: fields, filters, grouping, sorting and aggregations."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_org_owner", "organization_id", "owner_id", "id"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)


class ReportSchedule(IdMixin, TimestampMixin, Base):
    """A recurring run of a report, mailed to `recipients`; `next_run` is the next due time."""

    __tablename__ = "report_schedules"
    __table_args__ = (
        # The worker's due scan.
        Index("ix_report_schedules_status_next_run", "status", "next_run"),
        Index("ix_report_schedules_org_owner", "organization_id", "owner_id", "id"),
        Index("ix_report_schedules_report", "report_id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    report_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("reports.id", ondelete="CASCADE"), nullable=False
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    frequency: Mapped[str] = mapped_column(String(10), nullable=False)
    time_of_day: Mapped[str] = mapped_column(String(5), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    day_of_week: Mapped[int | None] = mapped_column(Integer)
    day_of_month: Mapped[int | None] = mapped_column(Integer)
    recipients: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    format: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="active")
    next_run: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


_RUNNING = text("status = 'running'")


class ReportRun(IdMixin, Base):
    """One execution of a report (an export or a scheduled run) and its stored file."""

    __tablename__ = "report_runs"
    __table_args__ = (
        # A schedule runs once per due time, whatever the workers do.
        UniqueConstraint("schedule_id", "due_at"),
        Index("ix_report_runs_org_owner", "organization_id", "owner_id", "id"),
        Index("ix_report_runs_report", "report_id", "id"),
        Index("ix_report_runs_expires_at", "expires_at"),
        # The worker's scans for runs a dead worker left `running`: the history of finished
        # runs grows without bound, the running ones are a handful. The scans bind 'running'
        # as a parameter; the pool plans each statement with its values (plan_cache_mode in
        # db/engine.py), so the partial index applies.
        Index(
            "ix_report_runs_running",
            "created_at",
            postgresql_where=_RUNNING,
            sqlite_where=_RUNNING,
        ),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    report_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("reports.id", ondelete="CASCADE"), nullable=False
    )
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("report_schedules.id", ondelete="SET NULL")
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    trigger: Mapped[str] = mapped_column(String(10), nullable=False)
    format: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="running")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    row_count: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(String(250))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    file_stored: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Until when the file is kept (and a download link may be issued for it).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReportFileChunk(Base):
    """A run's file, in pieces, so any process (app or worker, any host) can serve it."""

    __tablename__ = "report_file_chunks"

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("report_runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
