"""SLA policy requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadflow.kit.conditions import check_conditions
from leadflow.kit.patch import PatchModel


class PolicyCreate(BaseModel):
    """A response-time policy; `duration_minutes` are business minutes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    duration_minutes: int | None = Field(default=None, ge=1, le=60 * 24 * 60)
    reminder_minutes_before: int = Field(default=30, ge=0, le=60 * 24 * 10)
    conditions: dict[str, Any] = Field(default_factory=dict)
    calendar: dict[str, Any] | None = None
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    is_active: bool = True

    @field_validator("conditions")
    @classmethod
    def _c(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_conditions(v)


class PolicyUpdate(PatchModel):
    """Changes to a policy."""

    not_null = frozenset(
        {
            "name",
            "duration_minutes",
            "reminder_minutes_before",
            "conditions",
            "position",
            "is_active",
        }
    )

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=120)
    duration_minutes: int | None = Field(default=None, ge=1, le=60 * 24 * 60)
    reminder_minutes_before: int | None = Field(default=None, ge=0, le=60 * 24 * 10)
    conditions: dict[str, Any] | None = None
    calendar: dict[str, Any] | None = None
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    is_active: bool | None = None

    @field_validator("conditions")
    @classmethod
    def _c(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else check_conditions(v)


class PolicyRead(BaseModel):
    """An SLA policy."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    duration_minutes: int
    reminder_minutes_before: int
    conditions: dict[str, Any]
    calendar: dict[str, Any] | None
    position: int
    is_active: bool


SlaState = Literal["at_risk", "breached", "met", "running"]


class SlaLead(BaseModel):
    """A lead with its SLA clock."""

    id: uuid.UUID
    full_name: str
    status: str
    assignee_id: uuid.UUID | None
    sla_deadline: datetime | None
    sla_met_at: datetime | None
    sla_breached_at: datetime | None
    state: str
