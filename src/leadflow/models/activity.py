"""Interactions (calls, emails, meetings …) and message delivery events of a lead."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin
from leadflow.db.types import JSONType, UTCDateTime
from leadflow.kit.clock import utcnow


class Interaction(IdMixin, Base):
    """A logged contact with a lead (or an internal note)."""

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_lead_occurred", "lead_id", "occurred_at"),
        # Analytics: the interactions of a period.
        # Analytics: a period's interactions by who logged them, from the index alone on
        # PostgreSQL.
        Index(
            "ix_interactions_org_occurred",
            "organization_id",
            "occurred_at",
            postgresql_include=["actor_user_id", "lead_id"],
        ),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    lead_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False
    )
    type: Mapped[str] = mapped_column(String(20), nullable=False)
    direction: Mapped[str] = mapped_column(String(10), nullable=False)
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class MessageEvent(IdMixin, Base):
    """A delivery event of a message to a lead (sent, delivered, opened, … unsubscribed)."""

    __tablename__ = "message_events"
    __table_args__ = (Index("ix_message_events_lead_occurred", "lead_id", "occurred_at"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    lead_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False
    )
    type: Mapped[str] = mapped_column(String(20), nullable=False)
    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    message_id: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
