"""CallRequest and CallRequestEvent: voice-AI booking calls (seed 001) and their event log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin
from leadflow.db.types import JSONType, UTCDateTime
from leadflow.kit.clock import utcnow

# The periodic scan reads only requests waiting for an attempt or on a call: small partial
# indexes at any table size.
_WAITING = text("status IN ('queued', 'outside_business_hours', 'waiting_for_callback')")
_ON_CALL = text("status IN ('calling', 'in_progress')")


class CallRequest(IdMixin, TimestampMixin, Base):
    """A request to call someone and book an appointment on a user's behalf.

    `request_id` is the client's own id (unique per organisation, the idempotency key);
    `external_user_id` is the seed's `user_id` as the client sent it, `requested_by` the
    authenticated user. `attempts` counts call attempts and doubles as the token that lets
    a job or provider callback change only the attempt it belongs to. `scheduled_for` is
    when the next attempt is due (None while a call runs or once settled); `call_deadline_at`
    is when a running call counts as lost. `event_count` numbers the events (`seq`).
    """

    __tablename__ = "call_requests"
    __table_args__ = (
        UniqueConstraint("organization_id", "request_id"),
        Index("ix_call_requests_org_created", "organization_id", "created_at"),
        Index("ix_call_requests_org_status_created", "organization_id", "status", "created_at"),
        Index(
            "ix_call_requests_org_requester_created",
            "organization_id",
            "requested_by",
            "created_at",
        ),
        Index("ix_call_requests_lead_created", "lead_id", "created_at"),
        Index(
            "ix_call_requests_waiting_due",
            "scheduled_for",
            postgresql_where=_WAITING,
            sqlite_where=_WAITING,
        ),
        Index(
            "ix_call_requests_call_deadline",
            "call_deadline_at",
            postgresql_where=_ON_CALL,
            sqlite_where=_ON_CALL,
        ),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    request_id: Mapped[str] = mapped_column(String(100), nullable=False)
    external_user_id: Mapped[str] = mapped_column(String(200), nullable=False)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The request is the requester's, not the lead's: erasing a lead only unlinks it.
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("leads.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    callback_number: Mapped[str] = mapped_column(String(32), nullable=False)
    number_to_call: Mapped[str] = mapped_column(String(32), nullable=False)
    preferred_time: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    user_profile: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(30), nullable=False, default="queued")
    summary: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    call_deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_call_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class CallRequestEvent(IdMixin, Base):
    """One step of a call request (`type` from seed 001's list), numbered per request."""

    __tablename__ = "call_request_events"
    __table_args__ = (
        UniqueConstraint("call_request_id", "seq"),
        Index("ix_call_request_events_created_at", "created_at"),  # pruning by age
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    call_request_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("call_requests.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    type: Mapped[str] = mapped_column(String(30), nullable=False)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
