"""Queries for sessions, refresh tokens and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leadflow.db.fastpath import fetch_one
from leadflow.models.api_key import ApiKey
from leadflow.models.auth_session import AuthSession, RefreshToken
from leadflow.models.role import Role
from leadflow.models.user import User


async def get_session_row(session: AsyncSession, session_id: uuid.UUID) -> AuthSession | None:
    """A login session by id."""
    return await session.get(AuthSession, session_id)


async def get_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    """A refresh token by its hash, locked for the exchange where the database can."""
    return await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    )


@dataclass(frozen=True, slots=True)
class KeyCreator:
    """What bounds an API key: its creator's current status, team and role."""

    status: str
    team_id: uuid.UUID | None
    permissions: list[str]
    row_scope: str


async def get_api_key_by_hash(
    session: AsyncSession, key_hash: str
) -> tuple[ApiKey, KeyCreator | None] | None:
    """A live or revoked API key by hash, with its creator (None once the creator is gone)."""
    row = (
        await session.execute(
            select(ApiKey, User.status, User.team_id, Role.permissions, Role.row_scope)
            .outerjoin(User, User.id == ApiKey.created_by)
            .outerjoin(Role, Role.id == User.role_id)
            .where(ApiKey.key_hash == key_hash)
        )
    ).one_or_none()
    if row is None:
        return None
    key, status, team_id, permissions, row_scope = row
    if status is None or row_scope is None:
        return key, None
    return key, KeyCreator(status, team_id, list(permissions or ()), row_scope)


async def touch_api_key(session: AsyncSession, key_id: uuid.UUID, used_at: datetime) -> None:
    """Move a key's last use forward (never back: jobs may run out of order)."""
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < used_at),
        )
        .values(last_used_at=used_at)
    )


async def list_api_keys(session: AsyncSession, org_id: uuid.UUID) -> list[ApiKey]:
    """Keys of the organisation, newest first (revoked included)."""
    rows = await session.scalars(
        select(ApiKey).where(ApiKey.organization_id == org_id).order_by(ApiKey.created_at.desc())
    )
    return list(rows)


async def get_api_key(session: AsyncSession, org_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    """A key of the organisation."""
    return await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.organization_id == org_id)
    )


# The impersonating admin of an impersonation session, and their role (checked per request).
_Impersonator = aliased(User, name="impersonator")
_ImpersonatorRole = aliased(Role, name="impersonator_role")

# Built once: authentication runs on every request.
_SESSION_ACTOR = (
    select(
        AuthSession.user_id,
        AuthSession.revoked_at,
        AuthSession.expires_at,
        AuthSession.impersonator_id,
        User.organization_id,
        User.status,
        User.team_id,
        User.email,
        Role.name.label("role_name"),
        Role.permissions,
        Role.row_scope,
        _Impersonator.organization_id.label("impersonator_organization_id"),
        _Impersonator.status.label("impersonator_status"),
        _ImpersonatorRole.name.label("impersonator_role"),
    )
    .join(User, User.id == AuthSession.user_id)
    .join(Role, Role.id == User.role_id)
    .outerjoin(_Impersonator, _Impersonator.id == AuthSession.impersonator_id)
    .outerjoin(_ImpersonatorRole, _ImpersonatorRole.id == _Impersonator.role_id)
    .where(AuthSession.id == bindparam("session_id"))
)


async def get_session_actor(
    session: AsyncSession, session_id: uuid.UUID
) -> Mapping[str, Any] | None:
    """What authenticating a token needs, in one query of plain columns (runs per request).

    Columns rather than ORM objects: loading a session, a user and a role as entities on
    every request cost more than the query itself.
    """
    return await fetch_one(session, _SESSION_ACTOR, {"session_id": session_id})
