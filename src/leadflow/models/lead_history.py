"""Histories of a lead: status changes, assignments, notes edits, consents."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin
from leadflow.db.types import UTCDateTime
from leadflow.kit.clock import utcnow


class _LeadChild(IdMixin):
    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    lead_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False
    )
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class LeadStatusChange(_LeadChild, Base):
    """The lead moved from one stage to another."""

    __tablename__ = "lead_status_history"
    __table_args__ = (
        Index("ix_lead_status_history_lead", "lead_id", "created_at"),
        # Analytics: the moves into a stage (e.g. won) during a period.
        Index(
            "ix_lead_status_history_org_status",
            "organization_id",
            "to_status",
            "created_at",
            postgresql_include=["lead_id"],
        ),
    )

    # The organisation is the lead's (its key cascades from the organisation through the
    # lead): no foreign key of its own, whose check every new lead's first row would pay.
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(40))
    to_status: Mapped[str] = mapped_column(String(40), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))


class LeadAssignment(_LeadChild, Base):
    """The lead was (re)assigned; `rule_id` is set for automatic assignments."""

    __tablename__ = "lead_assignments"
    __table_args__ = (
        # The assignee in the index too: analytics find where each met SLA clock started (the
        # latest assignment to somebody before the response) from the index alone.
        Index(
            "ix_lead_assignments_lead", "lead_id", "created_at", postgresql_include=["to_user_id"]
        ),
    )

    from_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    to_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reason: Mapped[str | None] = mapped_column(String(500))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class LeadNoteEdit(_LeadChild, Base):
    """The notes text was edited."""

    __tablename__ = "lead_note_edits"
    __table_args__ = (Index("ix_lead_note_edits_lead", "lead_id", "created_at"),)

    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)


class Consent(_LeadChild, Base):
    """One entry of the consent ledger (append-only); the latest per channel counts."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_lead_channel", "lead_id", "channel", "created_at"),)

    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    granted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    source: Mapped[str] = mapped_column(String(120), nullable=False)
    text: Mapped[str | None] = mapped_column(Text)
