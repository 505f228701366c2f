"""API keys: issue (shown once), list, revoke."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record
from leadflow.auth import repository
from leadflow.auth.errors import ScopeEscalation
from leadflow.auth.service import API_KEY_PREFIX
from leadflow.authz.actor import Actor
from leadflow.authz.permissions import ALL_PERMISSIONS
from leadflow.exceptions import NotFound
from leadflow.kit.clock import utcnow
from leadflow.kit.security import new_token, token_digest
from leadflow.models.api_key import ApiKey

DEFAULT_SCOPES = ("leads:read", "tasks:read", "calls:read", "users:read")


class ApiKeyCreate(BaseModel):
    """A new key: a name and the permissions it carries."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))

    @field_validator("scopes")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(ALL_PERMISSIONS))
        if unknown:
            raise ValueError(f"unknown scopes: {', '.join(unknown)}")
        return sorted(set(v))


class ApiKeyRead(BaseModel):
    """A key as listed: prefix and usage only, never the secret."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    """The new key, with the full secret shown this one time."""

    api_key: str


async def create_key(session: AsyncSession, actor: Actor, data: ApiKeyCreate) -> ApiKeyCreated:
    """Issue a key; its scopes cannot exceed the creator's permissions."""
    beyond = sorted(set(data.scopes) - actor.permissions)
    if beyond:
        raise ScopeEscalation(f"You cannot grant scopes you do not hold: {', '.join(beyond)}")
    secret = API_KEY_PREFIX + new_token(32)
    row = ApiKey(
        organization_id=actor.organization_id,
        created_by=actor.user_id,
        name=data.name,
        prefix=secret[:11],
        key_hash=token_digest(secret),
        scopes=data.scopes,
    )
    session.add(row)
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="api_key.create",
        resource_type="api_key",
        resource_id=row.id,
        after={"name": row.name, "prefix": row.prefix, "scopes": row.scopes},
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(row).model_dump(), api_key=secret)


async def list_keys(session: AsyncSession, actor: Actor) -> list[ApiKey]:
    """Keys of the organisation."""
    return await repository.list_api_keys(session, actor.organization_id)


async def revoke_key(session: AsyncSession, actor: Actor, key_id: uuid.UUID) -> None:
    """Revoke a key; it stops authenticating at once."""
    row = await repository.get_api_key(session, actor.organization_id, key_id)
    if row is None:
        raise NotFound("API key not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await record(
            session,
            actor=actor,
            organization_id=actor.organization_id,
            action="api_key.revoke",
            resource_type="api_key",
            resource_id=row.id,
            before={"revoked_at": None},
            after={"revoked_at": row.revoked_at},
        )
