"""Assignment rule requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadflow.kit.conditions import check_conditions
from leadflow.kit.patch import PatchModel


class Strategy(StrEnum):
    """How a matching rule picks the assignee."""

    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    FIXED_USER = "fixed_user"
    TEAM = "team"


class RuleCreate(BaseModel):
    """A new assignment rule."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    is_active: bool = True
    conditions: dict[str, Any] = Field(default_factory=dict)
    strategy: Strategy
    user_ids: list[uuid.UUID] = Field(default_factory=list)
    team_id: uuid.UUID | None = None
    fixed_user_id: uuid.UUID | None = None

    @field_validator("conditions")
    @classmethod
    def _c(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_conditions(v)

    @model_validator(mode="after")
    def _targets(self) -> RuleCreate:
        s = self.strategy
        if s is Strategy.FIXED_USER and self.fixed_user_id is None:
            raise ValueError("fixed_user needs fixed_user_id")
        if s is Strategy.TEAM and self.team_id is None:
            raise ValueError("team needs team_id")
        if s in (Strategy.ROUND_ROBIN, Strategy.LEAST_LOADED) and not (
            self.user_ids or self.team_id
        ):
            raise ValueError(f"{s.value} needs user_ids or team_id")
        return self


class RuleUpdate(PatchModel):
    """Changes to a rule (only the fields sent)."""

    not_null = frozenset({"name", "position", "is_active", "conditions", "user_ids"})

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=120)
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    is_active: bool | None = None
    conditions: dict[str, Any] | None = None
    user_ids: list[uuid.UUID] | None = None
    team_id: uuid.UUID | None = None
    fixed_user_id: uuid.UUID | None = None

    @field_validator("conditions")
    @classmethod
    def _c(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else check_conditions(v)


class RuleRead(BaseModel):
    """An assignment rule."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    position: int
    is_active: bool
    conditions: dict[str, Any]
    strategy: str
    user_ids: list[str]
    team_id: uuid.UUID | None
    fixed_user_id: uuid.UUID | None
    created_at: datetime
