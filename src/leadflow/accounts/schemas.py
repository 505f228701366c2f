"""Requests and responses of `/api/v1/admin/users…` (seed 003's shapes) and invitations."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from leadflow.kit.passwords import MIN_PASSWORD_LENGTH
from leadflow.users.schemas import UserStatus

MAX_BULK_USERS = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AdminUserCreate(_Strict):
    """A new member; `send_invite` emails a one-time link to set a password (72 h)."""

    full_name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    phone: str | None = Field(default=None, max_length=40)
    role: str = Field(min_length=1, max_length=60)
    status: UserStatus = UserStatus.ACTIVE
    send_invite: bool = False
    team_id: uuid.UUID | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


class AdminUserCreated(BaseModel):
    """Seed 003's answer to a new member, with the invitation's expiry when one was sent."""

    user_id: uuid.UUID
    invite_sent: bool
    invite_expires_at: datetime | None = None


class AdminUserUpdate(_Strict):
    """Changes to a member (only the fields sent). `reassign_to` goes with `status: inactive`:
    the member's open leads go to that user instead of through the assignment rules."""

    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    role: str | None = Field(default=None, min_length=1, max_length=60)
    status: UserStatus | None = None
    team_id: uuid.UUID | None = None
    reassign_to: uuid.UUID | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str | None) -> str | None:
        return v.lower() if v else v


class AdminUserRead(BaseModel):
    """A member as the admin console shows them (never the password hash)."""

    id: uuid.UUID
    full_name: str
    email: str
    phone: str | None
    role: str
    status: str
    team_id: uuid.UUID | None
    has_password: bool
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AdminUserList(BaseModel):
    """Seed 003's list shape: `page` is 1-based (offset // limit + 1)."""

    users: list[AdminUserRead]
    total: int
    page: int
    limit: int
    offset: int


class Handover(BaseModel):
    """A deactivation: what happened to the member's open leads."""

    user_id: uuid.UUID
    status: str
    leads_reassigned: int
    leads_unassigned: int


class BulkAction(StrEnum):
    """What a bulk action does to each member (`delete` deactivates: users are kept)."""

    ACTIVATE = "activate"
    DEACTIVATE = "deactivate"
    DELETE = "delete"


class BulkActionIn(_Strict):
    """Up to 100 distinct members and one action."""

    user_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BULK_USERS)
    action: BulkAction
    reassign_to: uuid.UUID | None = None

    @field_validator("user_ids")
    @classmethod
    def _distinct(cls, v: list[uuid.UUID]) -> list[uuid.UUID]:
        return list(dict.fromkeys(v))


class BulkResult(BaseModel):
    """The outcome for one member: `ok` with the new status, or the error's status and code."""

    user_id: uuid.UUID
    ok: bool
    status: str | None = None
    leads_reassigned: int = 0
    leads_unassigned: int = 0
    http_status: int | None = None
    code: str | None = None
    detail: str | None = None


class BulkActionOut(BaseModel):
    """Per-member results, in the order sent."""

    action: BulkAction
    results: list[BulkResult]
    succeeded: int
    failed: int


class InviteOut(BaseModel):
    """A (re)sent invitation."""

    invite_sent: bool
    expires_at: datetime


class AcceptInviteIn(_Strict):
    """The token from the invitation link and the new password."""

    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)


class ImpersonationOut(BaseModel):
    """An access token acting as another member (15 minutes, no refresh token)."""

    impersonation_token: str
    token_type: str = "bearer"
    expires_at: datetime
    expires_in: int
    user_id: uuid.UUID


class PermissionRead(BaseModel):
    """One permission of the catalogue."""

    name: str
    description: str
