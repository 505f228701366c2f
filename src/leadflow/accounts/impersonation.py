"""Impersonation: an admin acts as another member for 15 minutes.

The token is an access token of the member whose `act` claim names the admin, bound to a
login session of its own (no refresh token) that ends at the same time. Every request
re-checks it (`auth.service.authenticate`): the session must be live and unexpired, the
admin still an active admin, the member still no admin. It never reaches `/api/v1/admin/*`,
and each write it makes is audited with both identities.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts import repository
from leadflow.accounts.errors import ImpersonationNotAllowed, UserInactive
from leadflow.accounts.schemas import ImpersonationOut
from leadflow.audit.service import record
from leadflow.auth.tokens import issue_access_token
from leadflow.authz.actor import Actor
from leadflow.authz.grants import ADMIN_ROLE
from leadflow.config import Settings
from leadflow.kit.clock import utcnow
from leadflow.kit.context import current_request
from leadflow.models.auth_session import AuthSession
from leadflow.users import service as users
from leadflow.users.schemas import UserStatus

IMPERSONATION_TTL = timedelta(minutes=15)


async def start(
    session: AsyncSession, settings: Settings, actor: Actor, user_id: uuid.UUID
) -> ImpersonationOut:
    """A 15-minute token acting as `user_id`, for an admin in person; audited
    `user.impersonate` (by the admin, on the member)."""
    target = await users.get_user(session, actor, user_id)  # 404 outside the organisation
    if actor.role != ADMIN_ROLE or actor.api_key_id is not None or actor.user_id is None:
        raise ImpersonationNotAllowed("Only an admin, signed in in person, can impersonate")
    if actor.impersonator_id is not None:
        raise ImpersonationNotAllowed("An impersonation cannot start another one")
    if target.id == actor.user_id:
        raise ImpersonationNotAllowed("You cannot impersonate yourself")
    if target.role.name == ADMIN_ROLE:
        raise ImpersonationNotAllowed("Admins cannot be impersonated")
    if target.status != UserStatus.ACTIVE.value:
        raise UserInactive("An inactive user cannot be impersonated")
    now = utcnow()
    ctx = current_request()
    row = AuthSession(
        user_id=target.id,
        organization_id=target.organization_id,
        created_at=now,
        expires_at=now + IMPERSONATION_TTL,
        ip=ctx.ip,
        user_agent=(ctx.user_agent or "")[:300] or None,
        impersonator_id=actor.user_id,
    )
    session.add(row)
    await session.flush()
    token, ttl = issue_access_token(
        settings,
        user_id=target.id,
        organization_id=target.organization_id,
        session_id=row.id,
        act=actor.user_id,
        ttl=IMPERSONATION_TTL,
    )
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="user.impersonate",
        resource_type="user",
        resource_id=target.id,
        after={"session_id": row.id, "expires_at": row.expires_at},
    )
    return ImpersonationOut(
        impersonation_token=token, expires_at=row.expires_at, expires_in=ttl, user_id=target.id
    )


async def end(session: AsyncSession, actor: Actor) -> int:
    """End impersonations: with an impersonation token that one; with an admin's own token
    every live one they started. Audited `impersonation.end`; how many ended."""
    now = utcnow()
    if actor.impersonator_id is not None and actor.session_id is not None:
        ended = int(
            await repository.revoke_session(session, actor.session_id, now, "impersonation_ended")
        )
    elif actor.user_id is not None:
        ended = await repository.revoke_impersonations_by(
            session, actor.user_id, now, "impersonation_ended"
        )
    else:
        ended = 0
    if ended:
        await record(
            session,
            actor=actor,
            organization_id=actor.organization_id,
            action="impersonation.end",
            resource_type="user",
            resource_id=actor.user_id,
            after={"sessions_ended": ended},
        )
    return ended
