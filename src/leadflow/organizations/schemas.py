"""Role and team requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadflow.authz.permissions import ALL_PERMISSIONS, RowScope
from leadflow.kit.patch import PatchModel


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


def _call_countries(v: list[str] | None) -> list[str] | None:
    """ISO 3166-1 alpha-2 codes phonenumbers knows, upper-cased, de-duplicated, in order."""
    if v is None:
        return None
    codes = list(dict.fromkeys(c.strip().upper() for c in v))
    unknown = [c for c in codes if c not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(f"unknown country codes: {', '.join(unknown)} (ISO 3166-1 alpha-2)")
    return codes


class OrgSettings(BaseModel):
    """Organisation-wide preferences (stored in `organizations.settings`).

    `allowed_call_countries`: countries outbound calls may go to (ISO 3166-1 alpha-2); unset
    means the business calendar's country, else `LEADFLOW_DEFAULT_PHONE_REGION`.
    `untouched_alert_days`: an open lead without contact for this many days is an alert
    (`GET /api/v1/analytics/alerts`).
    """

    model_config = ConfigDict(extra="forbid")

    clear_needs_action_on_interaction: bool = True
    default_language: str = Field(default="de", pattern=r"^(de|en)$")
    calendar: dict[str, Any] | None = None
    allowed_call_countries: list[str] | None = Field(default=None, min_length=1, max_length=250)
    untouched_alert_days: int = Field(default=7, ge=1, le=365)

    @field_validator("allowed_call_countries")
    @classmethod
    def _countries(cls, v: list[str] | None) -> list[str] | None:
        return _call_countries(v)


class OrgSettingsUpdate(PatchModel):
    """Changes to the organisation settings (only the keys sent)."""

    not_null = frozenset(
        {"clear_needs_action_on_interaction", "default_language", "untouched_alert_days"}
    )

    model_config = ConfigDict(extra="forbid")

    clear_needs_action_on_interaction: bool | None = None
    default_language: str | None = Field(default=None, pattern=r"^(de|en)$")
    calendar: dict[str, Any] | None = None
    allowed_call_countries: list[str] | None = Field(default=None, min_length=1, max_length=250)
    untouched_alert_days: int | None = Field(default=None, ge=1, le=365)

    @field_validator("allowed_call_countries")
    @classmethod
    def _countries(cls, v: list[str] | None) -> list[str] | None:
        return _call_countries(v)
