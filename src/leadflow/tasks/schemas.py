"""Task requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadflow.kit.patch import PatchModel


class Priority(StrEnum):
    """How urgent a task is."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TaskStatus(StrEnum):
    """Where a task stands."""

    OPEN = "open"
    DONE = "done"
    CANCELED = "canceled"


def _aware(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        raise ValueError("must include a timezone (e.g. 2026-01-31T09:00:00Z)")
    return v


class TaskCreate(BaseModel):
    """A new task; without `assignee_id` it is yours."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    due_at: datetime | None = None
    priority: Priority = Priority.NORMAL
    lead_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None

    @field_validator("due_at")
    @classmethod
    def _due(cls, v: datetime | None) -> datetime | None:
        return _aware(v)


class TaskUpdate(PatchModel):
    """Changes to a task (only the fields sent)."""

    not_null = frozenset({"title", "priority", "status"})

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    due_at: datetime | None = None
    priority: Priority | None = None
    status: TaskStatus | None = None
    assignee_id: uuid.UUID | None = None

    @field_validator("due_at")
    @classmethod
    def _due(cls, v: datetime | None) -> datetime | None:
        return _aware(v)


class TaskRead(BaseModel):
    """A task."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    description: str | None
    due_at: datetime | None
    priority: str
    status: str
    lead_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    created_by: uuid.UUID | None
    completed_at: datetime | None
    completed_by: uuid.UUID | None
    overdue: bool = False
    created_at: datetime
    updated_at: datetime
