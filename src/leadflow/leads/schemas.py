"""Lead requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from leadflow.kit.patch import PatchModel

DISG_TYPES = ("D", "I", "S", "G", "C")


class ConsentChannel(StrEnum):
    """Channels a consent can be given for."""

    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    PHONE = "phone"


class _LeadFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_name: str | None = Field(default=None, max_length=120)
    last_name: str | None = Field(default=None, max_length=120)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    company: str | None = Field(default=None, max_length=200)
    channel: str | None = Field(default=None, max_length=40)
    source: str | None = Field(default=None, max_length=120)
    utm_source: str | None = Field(default=None, max_length=200)
    utm_medium: str | None = Field(default=None, max_length=200)
    utm_campaign: str | None = Field(default=None, max_length=200)
    status: str | None = Field(default=None, max_length=40)
    tags: list[str] | None = None
    assignee_id: uuid.UUID | None = None
    disg_type: str | None = None
    notes: str | None = Field(default=None, max_length=20_000)
    custom: dict[str, Any] | None = None
    score: int | None = Field(default=None, ge=0, le=100)
    needs_action: bool | None = None
    next_action_at: datetime | None = None
    next_action_description: str | None = Field(default=None, max_length=500)
    last_contacted_at: datetime | None = None

    @field_validator("disg_type")
    @classmethod
    def _disg(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        v = v.strip().upper()
        if v not in DISG_TYPES:
            raise ValueError("must be one of D, I, S, G, C")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        out: list[str] = []
        for tag in v:
            tag = tag.strip()
            if not tag or len(tag) > 60:
                raise ValueError("tags must be 1–60 characters")
            if tag not in out:
                out.append(tag)
        return out

    @field_validator("next_action_at", "last_contacted_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("must include a timezone (e.g. 2026-01-31T09:00:00Z)")
        return v


class LeadCreate(_LeadFields):
    """A new lead. `name` is split into first and last name when those are not given."""

    name: str | None = Field(default=None, max_length=250)


class LeadUpdate(PatchModel, _LeadFields):
    """Partial update; `version` (or `If-Match`) guards against overwriting newer changes."""

    not_null = frozenset({"status", "tags", "custom", "score", "needs_action"})

    version: int | None = Field(default=None, ge=1, le=2_147_483_647)


class NotesUpdate(BaseModel):
    """New notes text."""

    model_config = ConfigDict(extra="forbid")

    notes: str | None = Field(max_length=20_000)
    version: int | None = Field(default=None, ge=1, le=2_147_483_647)


class StatusChange(BaseModel):
    """Move a lead to a stage."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: str = Field(min_length=1, max_length=40)
    reason: str | None = Field(default=None, max_length=500)


class AssignIn(BaseModel):
    """Assign a lead (null unassigns)."""

    model_config = ConfigDict(extra="forbid")

    assignee_id: uuid.UUID | None
    reason: str | None = Field(default=None, max_length=500)


class ConsentIn(BaseModel):
    """One consent-ledger entry."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: ConsentChannel
    granted: bool
    source: str = Field(min_length=1, max_length=120)
    text: str | None = Field(default=None, max_length=5000)


class ConsentRead(BaseModel):
    """A consent-ledger entry."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel: str
    granted: bool
    source: str
    text: str | None
    actor_user_id: uuid.UUID | None
    created_at: datetime


class StageRef(BaseModel):
    """The stage a lead is in."""

    key: str
    name: str
    category: str
    probability: int


class LeadRead(BaseModel):
    """A lead as lists return it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    first_name: str | None
    last_name: str | None
    full_name: str
    email: str | None
    phone: str | None
    company: str | None
    channel: str | None
    source: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    status: str
    tags: list[str]
    assignee_id: uuid.UUID | None
    created_by: uuid.UUID | None
    disg_type: str | None
    custom: dict[str, Any]
    score: int
    needs_action: bool
    next_action_at: datetime | None
    next_action_description: str | None
    last_contacted_at: datetime | None
    import_batch_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


# `none`: the lead has no clock (never assigned, or its clock was never started).
SlaClockState = Literal["none", "running", "at_risk", "met", "breached"]


class SlaPolicyRef(BaseModel):
    """The policy a clock was started under (`name` is null once the policy is deleted)."""

    id: uuid.UUID
    name: str | None


class SlaClock(BaseModel):
    """A lead's SLA clock; `policy` is null when the organisation default applied."""

    state: SlaClockState
    policy: SlaPolicyRef | None
    deadline: datetime | None
    reminder_at: datetime | None
    reminded_at: datetime | None
    met_at: datetime | None
    breached_at: datetime | None


class LeadDetail(LeadRead):
    """A lead with its notes, stage, latest consent per channel and SLA clock."""

    notes: str | None
    stage: StageRef | None
    consents: dict[str, ConsentRead]
    sla: SlaClock


class LeadPage(BaseModel):
    """A page of leads; `next_cursor` continues keyset paging."""

    items: list[LeadRead]
    total: int
    limit: int
    offset: int
    total_is_estimate: bool = False
    next_cursor: str | None = None


class DuplicateRead(BaseModel):
    """A likely duplicate and why."""

    lead: LeadRead
    score: int
    reasons: list[str]


class MergeIn(BaseModel):
    """Leads to merge into this one."""

    model_config = ConfigDict(extra="forbid")

    other_ids: list[uuid.UUID] = Field(min_length=1, max_length=50)


class LeadFilter(BaseModel):
    """List filters (query string for GET, JSON body for export and bulk)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: str | None = Field(default=None, max_length=200)
    status: list[str] = Field(default_factory=list)
    tag: list[str] = Field(default_factory=list)
    source: str | None = None
    assigned_to: str | None = None  # user id, "me" or "none"
    date_from: AwareDatetime | None = None  # naive bounds are rejected (422)
    date_to: AwareDatetime | None = None
    needs_action: bool | None = None
    import_batch_id: uuid.UUID | None = None
    custom: dict[str, str] = Field(default_factory=dict)

    @field_validator("assigned_to")
    @classmethod
    def _assigned(cls, v: str | None) -> str | None:
        if v is None or v in ("me", "none"):
            return v
        try:
            uuid.UUID(v)
        except ValueError:
            raise ValueError("must be a user id, 'me' or 'none'") from None
        return v


SORTS = (
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "name",
    "-name",
    "last_contacted_at",
    "-last_contacted_at",
    "next_action_at",
    "-next_action_at",
    "score",
    "-score",
    "status",
    "-status",
)


class ExportIn(LeadFilter):
    """Export: list filters plus sort."""

    sort: str = "-created_at"


BulkAction = Literal["assign", "status", "tag_add", "tag_remove", "delete"]


class BulkIn(BaseModel):
    """A bulk action over ids or a filter."""

    model_config = ConfigDict(extra="forbid")

    ids: list[uuid.UUID] | None = Field(default=None, max_length=10_000)
    filter: LeadFilter | None = None
    action: BulkAction
    value: Any = None


class BulkOut(BaseModel):
    """How many leads matched and how many changed."""

    matched: int
    updated: int


class TagCount(BaseModel):
    """A tag and how many leads carry it."""

    tag: str
    count: int


class NeedsActionLead(BaseModel):
    """A lead in the needs-action sidebar."""

    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    status: str
    next_action_at: datetime | None
    next_action_description: str | None


class NeedsAction(BaseModel):
    """Seed 000's sidebar shape: `{"leads": [...]}`."""

    leads: list[NeedsActionLead]
