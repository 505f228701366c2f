"""Assignment rules and SLA policies."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin
from leadflow.db.types import JSONType


class AssignmentRule(IdMixin, TimestampMixin, Base):
    """When a new lead matches `conditions`, give it to someone by `strategy`."""

    __tablename__ = "assignment_rules"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    strategy: Mapped[str] = mapped_column(String(20), nullable=False)
    user_ids: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("teams.id", ondelete="SET NULL")
    )
    fixed_user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )
    # Round-robin cursor: bumped with a row lock so concurrent creations take distinct slots.
    rr_counter: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class SlaPolicy(IdMixin, TimestampMixin, Base):
    """Response-time target for leads matching `conditions`, in business minutes."""

    __tablename__ = "sla_policies"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    duration_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    reminder_minutes_before: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    calendar: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
