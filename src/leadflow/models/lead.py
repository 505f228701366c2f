"""Lead: the core record — a person or company a sales team works on."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin
from leadflow.db.types import JSONType, UTCDateTime

_LIVE = text("deleted_at IS NULL")
_DELETED = text("deleted_at IS NOT NULL")
_SLA_OPEN = text(
    "sla_deadline IS NOT NULL AND sla_met_at IS NULL AND sla_breached_at IS NULL "
    "AND deleted_at IS NULL"
)
_SLA_MET = text("sla_met_at IS NOT NULL AND deleted_at IS NULL")
_SLA_CLOCK = text("sla_deadline IS NOT NULL AND deleted_at IS NULL")
_SLA_REMIND = text(
    "sla_reminder_at IS NOT NULL AND sla_reminded_at IS NULL "
    "AND sla_met_at IS NULL AND sla_breached_at IS NULL AND deleted_at IS NULL"
)


# What analytics read of a period's new leads (see `ix_leads_org_created`).
COHORT_COLUMNS = ("assignee_id", "created_by", "source", "status", "stages_reached")


def reached_with(reached: str | None, *statuses: str) -> str:
    """`Lead.stages_reached` with `statuses` added: sorted keys, each between commas."""
    keys = {k for k in (reached or "").split(",") if k} | set(statuses)
    return f",{','.join(sorted(keys))}," if keys else ""


def reached_keys(reached: str | None) -> set[str]:
    """The stage keys of a `Lead.stages_reached` value."""
    return {k for k in (reached or "").split(",") if k}


def _initial_reached(context: Any) -> str:
    # A lead inserted without it has been in its first stage only.
    status = context.get_current_parameters().get("status")
    return reached_with(None, status) if status else ""


def _live_index(name: str, *cols: Any) -> Index:
    # Partial indexes: soft-deleted leads never appear in lists, so they need no index entries.
    return Index(name, *cols, postgresql_where=_LIVE, sqlite_where=_LIVE)


class Lead(IdMixin, TimestampMixin, Base):
    """A lead. `status` is the key of a pipeline stage; `version` guards concurrent edits."""

    __tablename__ = "leads"
    __table_args__ = (
        # The default list order; on PostgreSQL it also carries what analytics group the
        # leads created in a period by (owners, source, stage, stages reached), so a
        # period's cohort is counted from the index alone.
        Index(
            "ix_leads_org_created",
            "organization_id",
            "created_at",
            "id",
            postgresql_where=_LIVE,
            sqlite_where=_LIVE,
            postgresql_include=list(COHORT_COLUMNS),
        ),
        _live_index("ix_leads_org_status_created", "organization_id", "status", "created_at"),
        # With the id alongside (PostgreSQL), "the ids of the leads assigned to these people"
        # is read from the index alone (analytics scope an organisation's rows by it).
        Index(
            "ix_leads_org_assignee_created",
            "organization_id",
            "assignee_id",
            "created_at",
            postgresql_where=_LIVE,
            sqlite_where=_LIVE,
            postgresql_include=["id"],
        ),
        # The few deleted leads, so figures over a whole organisation can leave them out
        # without looking at every live one.
        Index(
            "ix_leads_org_deleted",
            "organization_id",
            postgresql_where=_DELETED,
            sqlite_where=_DELETED,
        ),
        _live_index("ix_leads_org_email", "organization_id", "email"),
        _live_index("ix_leads_org_phone", "organization_id", "phone"),
        _live_index("ix_leads_org_last_name", "organization_id", "last_name"),
        # The needs-action list's whole order (next action, then longest waiting), so it
        # stops after a page instead of sorting every flagged lead.
        _live_index(
            "ix_leads_org_needs_action",
            "organization_id",
            "needs_action",
            "next_action_at",
            "created_at",
            "id",
        ),
        _live_index("ix_leads_org_last_contacted", "organization_id", "last_contacted_at"),
        _live_index("ix_leads_org_next_action", "organization_id", "next_action_at"),
        _live_index("ix_leads_org_score", "organization_id", "score"),
        _live_index("ix_leads_org_name", "organization_id", "full_name", "id"),
        Index("ix_leads_import_batch", "import_batch_id"),
        # The periodic SLA check reads only running clocks: tiny partial indexes at any size.
        Index(
            "ix_leads_sla_reminder_due",
            "sla_reminder_at",
            postgresql_where=_SLA_REMIND,
            sqlite_where=_SLA_REMIND,
        ),
        Index(
            "ix_leads_sla_deadline_open",
            "sla_deadline",
            postgresql_where=_SLA_OPEN,
            sqlite_where=_SLA_OPEN,
        ),
        # Analytics: responses and SLA outcomes of a period are ranges over these times. On
        # PostgreSQL the other clock times and the owners ride along, so the figures of a
        # period (response times, met in time or not, per assignee) come from the index alone.
        Index(
            "ix_leads_org_sla_met",
            "organization_id",
            "sla_met_at",
            postgresql_where=_SLA_MET,
            sqlite_where=_SLA_MET,
            postgresql_include=["sla_started_at", "sla_deadline", "assignee_id", "created_by"],
        ),
        Index(
            "ix_leads_org_sla_deadline",
            "organization_id",
            "sla_deadline",
            postgresql_where=_SLA_CLOCK,
            sqlite_where=_SLA_CLOCK,
            postgresql_include=["sla_met_at", "assignee_id", "created_by"],
        ),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    full_name: Mapped[str] = mapped_column(String(250), nullable=False, default="")
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    company: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str | None] = mapped_column(String(120))
    utm_source: Mapped[str | None] = mapped_column(String(200))
    utm_medium: Mapped[str | None] = mapped_column(String(200))
    utm_campaign: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(40), nullable=False)
    tags: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    disg_type: Mapped[str | None] = mapped_column(String(1))
    notes: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    score: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    needs_action: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    next_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_action_description: Mapped[str | None] = mapped_column(String(500))
    last_contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    import_batch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    analyzed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Lower-cased "name email phone company", the one column `q` searches (trigram on PostgreSQL).
    search_text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # The key of every stage the lead has been in (its status history and current status),
    # sorted, each between commas (",contacted,new,won,"), so "has it ever been won" and "how
    # far did it get" are read off the lead itself. Order-free: a reordered pipeline needs no
    # recomputation. Written with the status by the leads service (`effects.reached_with`).
    stages_reached: Mapped[str] = mapped_column(
        Text, nullable=False, default=_initial_reached, server_default=""
    )
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    sla_policy_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # When the current clock started (the assignment that started it).
    sla_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    # The version counts user-visible edits (services bump it); system updates such as SLA
    # bookkeeping keep it, so a client's If-Match is not invalidated behind its back. The
    # column still guards every UPDATE against concurrent writers.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
