"""Auth requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from leadflow.kit.passwords import MIN_PASSWORD_LENGTH


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegisterIn(_Strict):
    """Sign-up: a new organisation and its first admin."""

    email: EmailStr
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)
    full_name: str = Field(min_length=1, max_length=200)
    organization_name: str = Field(min_length=1, max_length=200)

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


class LoginIn(_Strict):
    """Email and password."""

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(_Strict):
    """A refresh token to exchange."""

    refresh_token: str = Field(min_length=10, max_length=200)


class TokenPair(BaseModel):
    """Access and refresh token."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class OrganizationRef(BaseModel):
    """Id and name of an organisation."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str


class UserRef(BaseModel):
    """A user as returned at sign-up."""

    id: uuid.UUID
    email: str
    full_name: str
    role: str


class RegisterOut(TokenPair):
    """Sign-up result."""

    user: UserRef
    organization: OrganizationRef


class Impersonation(BaseModel):
    """Who is acting as the current user, until when."""

    admin: UserRef
    expires_at: datetime


class MeOut(BaseModel):
    """The current user; `impersonation` is set when an admin acts as them."""

    id: uuid.UUID
    email: str
    full_name: str
    role: str
    permissions: list[str]
    team_id: uuid.UUID | None
    organization: OrganizationRef
    impersonation: Impersonation | None = None
