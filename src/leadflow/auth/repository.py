"""Queries for sessions, refresh tokens and API keys."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from leadflow.models.api_key import ApiKey
from leadflow.models.auth_session import AuthSession, RefreshToken
from leadflow.models.user import User


async def get_session_row(session: AsyncSession, session_id: uuid.UUID) -> AuthSession | None:
    """A login session by id."""
    return await session.get(AuthSession, session_id)


async def get_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    """A refresh token by its hash, locked for the exchange where the database can."""
    return await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    )


async def get_api_key_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """A live or revoked API key by hash."""
    return await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


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


async def get_session_with_user(
    session: AsyncSession, session_id: uuid.UUID
) -> tuple[AuthSession, User] | None:
    """A login session with its user and role, in one query (runs on every request)."""
    row = (
        await session.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .options(joinedload(User.role))
            .where(AuthSession.id == session_id)
        )
    ).first()
    return (row[0], row[1]) if row else None
