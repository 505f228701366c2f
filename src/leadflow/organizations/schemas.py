"""Role and team requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadflow.authz.permissions import ALL_PERMISSIONS, RowScope


def _known(perms: list[str]) -> list[str]:
    unknown = sorted(set(perms) - set(ALL_PERMISSIONS))
    if unknown:
        raise ValueError(f"unknown permissions: {', '.join(unknown)}")
    return sorted(set(perms))


class RoleCreate(BaseModel):
    """A custom role."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=60, pattern=r"^[a-z][a-z0-9_\-]*$")
    description: str = Field(default="", max_length=300)
    permissions: list[str]
    row_scope: RowScope = RowScope.OWN

    @field_validator("permissions")
    @classmethod
    def _perms(cls, v: list[str]) -> list[str]:
        return _known(v)


class RoleUpdate(BaseModel):
    """Changes to a custom role."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=300)
    permissions: list[str] | None = None
    row_scope: RowScope | None = None

    @field_validator("permissions")
    @classmethod
    def _perms(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _known(v)


class RoleRead(BaseModel):
    """A role with its permissions."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    permissions: list[str]
    row_scope: str
    is_system: bool


class TeamIn(BaseModel):
    """Create or rename a team."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)


class TeamRead(BaseModel):
    """A team."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime


class OrgSettings(BaseModel):
    """Organisation-wide preferences (stored in `organizations.settings`)."""

    model_config = ConfigDict(extra="forbid")

    clear_needs_action_on_interaction: bool = True
    default_language: str = Field(default="de", pattern=r"^(de|en)$")
    calendar: dict[str, Any] | None = None


class OrgSettingsUpdate(BaseModel):
    """Changes to the organisation settings (only the keys sent)."""

    model_config = ConfigDict(extra="forbid")

    clear_needs_action_on_interaction: bool | None = None
    default_language: str | None = Field(default=None, pattern=r"^(de|en)$")
    calendar: dict[str, Any] | None = None
