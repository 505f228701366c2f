"""The events the leads service publishes after every lead change (see `kit.events`).

Each event describes a *set* of leads, so a chunk of an import or a bulk action is one event
and its subscribers can react with a constant number of statements. A lead in an event is a
model instance or a `RecordView` over the row written set-based; read it by attribute.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.kit.events import Event


@dataclass(frozen=True, kw_only=True)
class LeadEvent(Event):
    """What every lead event carries: who, in which organisation, when."""

    actor: Actor | None
    organization_id: uuid.UUID
    now: datetime


@dataclass(frozen=True, kw_only=True)
class LeadsCreated(LeadEvent):
    """New leads were written (by the API, an import chunk or a merge-free create)."""

    name: ClassVar[str] = "lead.created"
    leads: Sequence[Any]
    source: str = "api"


@dataclass(frozen=True)
class Change:
    """One lead's changed fields, before and after (JSON-ready, as the audit stores them)."""

    lead_id: uuid.UUID
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class LeadsUpdated(LeadEvent):
    """Fields of existing leads changed (status and assignee changes have their own events)."""

    name: ClassVar[str] = "lead.updated"
    changes: Sequence[Change]
    source: str = "api"


@dataclass(frozen=True)
class Move:
    """A lead moved from one pipeline stage to another."""

    lead: Any
    from_status: str | None
    to_status: str
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class LeadsStatusChanged(LeadEvent):
    """Leads changed stage (their status history rows are written)."""

    name: ClassVar[str] = "lead.status_changed"
    moves: Sequence[Move]


@dataclass(frozen=True)
class Assignment:
    """A lead got another assignee (its assignment history row is `assignment_id`)."""

    lead: Any
    assignment_id: uuid.UUID
    from_user_id: uuid.UUID | None
    to_user_id: uuid.UUID | None
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class LeadsAssigned(LeadEvent):
    """Leads were assigned (or unassigned). `notify` is False where the caller sends one
    summary instead of a message per lead (an import)."""

    name: ClassVar[str] = "lead.assigned"
    settings: Settings  # SLA defaults and the links in the message
    assignments: Sequence[Assignment]
    notify: bool = True


@dataclass(frozen=True, kw_only=True)
class LeadsResponded(LeadEvent):
    """Leads got their first response: they left the first stage or were contacted outbound."""

    name: ClassVar[str] = "lead.responded"
    lead_ids: Sequence[uuid.UUID]


@dataclass(frozen=True, kw_only=True)
class LeadsDeleted(LeadEvent):
    """Leads were soft-deleted (deleted, merged away or removed by an import undo)."""

    name: ClassVar[str] = "lead.deleted"
    lead_ids: Sequence[uuid.UUID]
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class LeadsMerged(LeadEvent):
    """Leads were merged into a survivor, which took over their history."""

    name: ClassVar[str] = "lead.merged"
    survivor_id: uuid.UUID
    merged_ids: Sequence[uuid.UUID]


ALL = (
    LeadsCreated,
    LeadsUpdated,
    LeadsStatusChanged,
    LeadsAssigned,
    LeadsResponded,
    LeadsDeleted,
    LeadsMerged,
)
