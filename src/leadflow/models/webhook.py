"""Webhooks: an organisation's endpoints, the deliveries owed to them and every attempt."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin
from leadflow.db.types import JSONType, UTCDateTime
from leadflow.kit.clock import utcnow

_DUE = text("status IN ('pending', 'retry')")
_TEST_CLAIMS = text("event_type = 'webhook.test' AND status IN ('pending', 'retry')")


class WebhookEndpoint(IdMixin, TimestampMixin, Base):
    """A URL that receives the events it subscribed to, signed with its secret (a Fernet
    token; after a rotation the previous secret also signs until it expires)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_org_status", "organization_id", "status"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    description: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="active")
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Health: when the current run of failures began, how long it is, the last success.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )


class WebhookDelivery(IdMixin, Base):
    """One event owed to one endpoint. `message_id` is the event's `webhook-id` (the same for
    every endpoint and every attempt); `ordering_key` (the lead, or the call request) keeps
    deliveries about one subject in order; `body` is the JSON of the event's `data`."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=_DUE,
            sqlite_where=_DUE,
        ),
        Index(
            "ix_webhook_deliveries_queue",
            "endpoint_id",
            "ordering_key",
            "id",
            postgresql_where=_DUE,
            sqlite_where=_DUE,
        ),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        # Test events claimed and still queued: the worker's scan for abandoned tests.
        Index(
            "ix_webhook_deliveries_test_claims",
            "locked_until",
            postgresql_where=_TEST_CLAIMS,
            sqlite_where=_TEST_CLAIMS,
        ),
    )

    # No foreign key: its check per row doubled the cost of an import's COPY of deliveries
    # (docs/performance.md). Deleting an endpoint deletes its deliveries; rows of an endpoint
    # gone otherwise (its organisation deleted) are never due and are pruned.
    endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    event_type: Mapped[str] = mapped_column(String(40), nullable=False)
    ordering_key: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookBatch(Base):
    """Deliveries of a large event set (an import chunk) for one endpoint, written as one row
    in the change's transaction and turned into `WebhookDelivery` rows by the worker. Their
    ids are assigned when written (`items`: JSON `[[id, message_id, ordering_key, body], …]`),
    so they keep their place in each subject's order; `id` is the smallest of them. `items`
    is zlib-compressed: an import chunk's bodies shrink about sixfold, and the bytes written
    were what a SQLite import paid for them."""

    __tablename__ = "webhook_batches"
    __table_args__ = (Index("ix_webhook_batches_endpoint", "endpoint_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    event_type: Mapped[str] = mapped_column(String(40), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    items: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class WebhookAttempt(IdMixin, Base):
    """One HTTP attempt of a delivery: what the endpoint answered and how fast."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "attempted_at"),)

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    success: Mapped[bool] = mapped_column(Boolean, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(500))
