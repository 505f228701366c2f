"""User requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from leadflow.kit.passwords import MIN_PASSWORD_LENGTH


class UserStatus(StrEnum):
    """Whether a user may sign in."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class UserCreate(BaseModel):
    """A new member of the organisation."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr
    full_name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=60)
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=256)
    team_id: uuid.UUID | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


class UserUpdate(BaseModel):
    """Changes to a user (only the fields sent)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    role: str | None = Field(default=None, min_length=1, max_length=60)
    status: UserStatus | None = None
    team_id: uuid.UUID | None = None


class UserRead(BaseModel):
    """A user as the API shows it (never the password hash)."""

    id: uuid.UUID
    email: str
    full_name: str
    role: str
    status: str
    team_id: uuid.UUID | None
    last_login_at: datetime | None
    created_at: datetime
