"""Pipeline requests and responses."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class StageCategory(StrEnum):
    """Whether a stage is still open, or a won or lost outcome."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


class StageCreate(BaseModel):
    """A new stage (appended at the end unless `position` is given)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str = Field(min_length=1, max_length=80)
    category: StageCategory = StageCategory.OPEN
    probability: int = Field(default=0, ge=0, le=100)
    position: int | None = Field(default=None, ge=0, le=1_000_000)


class StageUpdate(BaseModel):
    """Rename or re-weight a stage (the key is stable)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=80)
    category: StageCategory | None = None
    probability: int | None = Field(default=None, ge=0, le=100)


class StageRead(BaseModel):
    """A pipeline stage."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    name: str
    position: int
    category: str
    probability: int


class ReorderIn(BaseModel):
    """Every stage id in the new order."""

    model_config = ConfigDict(extra="forbid")

    ids: list[uuid.UUID] = Field(min_length=1)


class StageSummary(BaseModel):
    """Leads in one stage."""

    key: str
    name: str
    category: str
    count: int
    share: float


class PipelineSummary(BaseModel):
    """Count and share of leads per stage."""

    total: int
    stages: list[StageSummary]
