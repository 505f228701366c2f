"""Task: a to-do for a user, optionally about a lead."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin
from leadflow.db.types import UTCDateTime


class Task(IdMixin, TimestampMixin, Base):
    """A follow-up, call-back or any other to-do with a due time."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index(
            "ix_tasks_org_assignee_status_due", "organization_id", "assignee_id", "status", "due_at"
        ),
        Index("ix_tasks_org_status_due", "organization_id", "status", "due_at"),
        Index("ix_tasks_lead_created", "lead_id", "created_at"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("leads.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    priority: Mapped[str] = mapped_column(String(10), nullable=False, default="normal")
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="open")
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Set when the assignee was told the task fell due (once per due time).
    due_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
