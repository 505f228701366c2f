"""Queries of member administration: invitations and impersonation sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.auth_session import AuthSession
from leadflow.models.invitation import Invitation


async def invitation_by_hash(session: AsyncSession, token_hash: str) -> Invitation | None:
    """An invitation by its token hash, row-locked where the database can (single use)."""
    return await session.scalar(
        select(Invitation).where(Invitation.token_hash == token_hash).with_for_update()
    )


async def revoke_invitations(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """Withdraw every unused invitation of a user."""
    await session.execute(
        update(Invitation)
        .where(
            Invitation.user_id == user_id,
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


async def revoke_impersonations_by(
    session: AsyncSession, admin_id: uuid.UUID, now: datetime, reason: str
) -> int:
    """End every live impersonation an admin started; how many there were."""
    result = await session.execute(
        update(AuthSession)
        .where(
            AuthSession.impersonator_id == admin_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .values(revoked_at=now, revoked_reason=reason)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def revoke_session(
    session: AsyncSession, session_id: uuid.UUID, now: datetime, reason: str
) -> bool:
    """End one live session; whether it was live."""
    result = await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
