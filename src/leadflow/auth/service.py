"""Sign-up, login, token rotation, logout and resolving credentials to an Actor."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record
from leadflow.auth import repository
from leadflow.auth.errors import (
    ApiKeyCreatorInactive,
    ImpersonationRestricted,
    InvalidApiKey,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidToken,
    RefreshTokenReused,
    SessionEnded,
    SignupDisabled,
)
from leadflow.auth.schemas import Impersonation, RegisterIn, TokenPair, UserRef
from leadflow.auth.tokens import decode_access_token, decode_supabase_token, issue_access_token
from leadflow.authz.actor import Actor
from leadflow.authz.grants import ADMIN_ROLE
from leadflow.authz.permissions import RowScope
from leadflow.config import Settings
from leadflow.db.engine import may_write
from leadflow.exceptions import TooManyRequests
from leadflow.kit.clock import utcnow
from leadflow.kit.context import current_request
from leadflow.kit.passwords import hash_password_async, verify_password_async
from leadflow.kit.ratelimit import FailureLimiter, HitLimiter
from leadflow.kit.security import new_token, token_digest
from leadflow.models.auth_session import AuthSession, RefreshToken
from leadflow.models.organization import Organization
from leadflow.models.user import User
from leadflow.organizations import service as orgs
from leadflow.users import repository as users
from leadflow.users.errors import EmailTaken
from leadflow.worker.jobs import enqueue_job

API_KEY_PREFIX = "lf_"
INVALID_CREDENTIALS = "Invalid email or password"


def actor_for_user(user: User, session_id: uuid.UUID | None = None) -> Actor:
    """The Actor of a signed-in user (role must be loaded)."""
    return _user_actor(
        user.organization_id,
        user.id,
        user.role.name,
        user.role.permissions,
        user.role.row_scope,
        team_id=user.team_id,
        email=user.email,
        session_id=session_id,
    )


def _user_actor(
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str,
    permissions: list[str],
    row_scope: str,
    *,
    team_id: uuid.UUID | None,
    email: str,
    session_id: uuid.UUID | None,
    impersonator_id: uuid.UUID | None = None,
) -> Actor:
    return Actor(
        organization_id=organization_id,
        user_id=user_id,
        role=role,
        permissions=frozenset(permissions),
        row_scope=RowScope(row_scope),
        team_id=team_id,
        session_id=session_id,
        email=email,
        impersonator_id=impersonator_id,
    )


async def start_session(session: AsyncSession, settings: Settings, user: User) -> TokenPair:
    """Open a login session and issue its first token pair."""
    ctx = current_request()
    now = utcnow()
    auth_session = AuthSession(
        user_id=user.id,
        organization_id=user.organization_id,
        expires_at=now + timedelta(days=settings.refresh_token_days),
        ip=ctx.ip,
        user_agent=(ctx.user_agent or "")[:300] or None,
    )
    session.add(auth_session)
    await session.flush()
    return await _issue_pair(session, settings, user, auth_session)


async def _issue_pair(
    session: AsyncSession, settings: Settings, user: User, auth_session: AuthSession
) -> TokenPair:
    refresh = new_token()
    session.add(RefreshToken(session_id=auth_session.id, token_hash=token_digest(refresh)))
    access, ttl = issue_access_token(
        settings, user_id=user.id, organization_id=user.organization_id, session_id=auth_session.id
    )
    await session.flush()
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=ttl)


async def register(
    session: AsyncSession, settings: Settings, limiter: HitLimiter, data: RegisterIn
) -> tuple[User, Organization, TokenPair]:
    """Create an organisation with its first admin and sign them in; limited per client IP."""
    if not settings.allow_signup:
        raise SignupDisabled("Sign-up is disabled on this server")
    wait = await limiter.hit(f"ip:{current_request().ip or 'unknown'}")
    if wait:
        raise TooManyRequests(
            "Too many sign-ups from this address; try again later", retry_after=wait
        )
    # Hashed before the first query, so no database connection waits on argon2.
    password_hash = await hash_password_async(data.password)
    if await users.get_by_email(session, data.email):
        raise EmailTaken("A user with this email already exists")
    org = await orgs.create_organization(session, name=data.organization_name)
    admin_role = await orgs.role_by_name(session, org.id, "admin")
    user = User(
        organization_id=org.id,
        email=data.email,
        full_name=data.full_name,
        password_hash=password_hash,
        role_id=admin_role.id,
        status="active",
        last_login_at=utcnow(),
    )
    user.role = admin_role
    session.add(user)
    await session.flush()
    actor = actor_for_user(user)
    await record(
        session,
        actor=actor,
        organization_id=org.id,
        action="organization.create",
        resource_type="organization",
        resource_id=org.id,
        after={"name": org.name},
    )
    await record(
        session,
        actor=actor,
        organization_id=org.id,
        action="user.register",
        resource_type="user",
        resource_id=user.id,
        after={"email": user.email, "full_name": user.full_name, "role": "admin"},
    )
    pair = await start_session(session, settings, user)
    return user, org, pair


async def login(
    session: AsyncSession, settings: Settings, limiter: FailureLimiter, email: str, password: str
) -> TokenPair:
    """Exchange email and password for tokens; throttled per email and per IP."""
    email = email.strip().lower()
    keys = [f"email:{email}", f"ip:{current_request().ip or 'unknown'}"]
    wait = await limiter.blocked_for(*keys)
    if wait:
        raise TooManyRequests("Too many failed logins; try again later", retry_after=wait)
    found = await users.get_by_email(session, email)
    user_id, password_hash = (found.id, found.password_hash) if found else (None, None)
    active = found is not None and found.status == "active"
    # Nothing is written yet: end the read so no pooled connection sits idle while argon2
    # runs (a burst of logins would otherwise hold every connection and stall other requests).
    await session.rollback()
    ok = await verify_password_async(password, password_hash)
    user = await users.get_with_role(session, user_id) if ok and active and user_id else None
    if user is None or user.status != "active":
        await limiter.record_failure(*keys)
        raise InvalidCredentials(INVALID_CREDENTIALS)
    await limiter.reset(f"email:{email}")
    user.last_login_at = utcnow()
    pair = await start_session(session, settings, user)
    await record(
        session,
        actor=actor_for_user(user),
        organization_id=user.organization_id,
        action="auth.login",
        resource_type="user",
        resource_id=user.id,
    )
    return pair


async def refresh(session: AsyncSession, settings: Settings, token: str) -> TokenPair:
    """Rotate a refresh token. Replaying a spent one revokes the whole session."""
    row = await repository.get_refresh_token(session, token_digest(token))
    if row is None:
        raise InvalidRefreshToken("Invalid refresh token")
    auth_session = await repository.get_session_row(session, row.session_id)
    now = utcnow()
    if (
        auth_session is None
        or auth_session.revoked_at is not None
        or auth_session.expires_at <= now
    ):
        raise SessionEnded("Session has ended")
    if row.used_at is not None:
        auth_session.revoked_at = now
        auth_session.revoked_reason = "refresh_token_reuse"
        # The revocation must persist although the request fails: reuse signals theft.
        raise RefreshTokenReused(
            "Refresh token was already used; session revoked", keep_changes=True
        )
    user = await users.get_with_role(session, auth_session.user_id)
    if user is None or user.status != "active":
        raise SessionEnded("Session has ended")
    row.used_at = now
    return await _issue_pair(session, settings, user, auth_session)


async def logout(session: AsyncSession, actor: Actor) -> None:
    """End the actor's login session."""
    if actor.session_id is None:
        return
    row = await repository.get_session_row(session, actor.session_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoked_reason = "logout"
        await record(
            session,
            actor=actor,
            organization_id=actor.organization_id,
            action="auth.logout",
            resource_type="user",
            resource_id=actor.user_id,
        )


async def authenticate(session: AsyncSession, settings: Settings, credential: str) -> Actor:
    """Resolve a bearer credential (API key, Leadflow JWT or Supabase JWT) to an Actor."""
    if credential.startswith(API_KEY_PREFIX):
        return await _authenticate_api_key(session, credential)
    claims = decode_access_token(settings, credential)
    if claims is not None:
        row = await repository.get_session_actor(session, claims.session_id)
        if (
            row is None
            or row["revoked_at"] is not None
            or row["user_id"] != claims.user_id
            or row["status"] != "active"
            or row["impersonator_id"] != claims.act
        ):
            raise SessionEnded("Session has ended")
        if claims.act is not None and not _impersonation_holds(row):
            raise SessionEnded("The impersonation has ended")
        return _user_actor(
            row["organization_id"],
            row["user_id"],
            row["role_name"],
            row["permissions"],
            row["row_scope"],
            team_id=row["team_id"],
            email=row["email"],
            session_id=claims.session_id,
            impersonator_id=claims.act,
        )
    email = decode_supabase_token(settings, credential)
    if email is not None:
        user = await users.get_by_email(session, email)
        if user is not None and user.status == "active":
            return actor_for_user(user)
    raise InvalidToken("Invalid or expired token")


def _impersonation_holds(row: Mapping[str, Any]) -> bool:
    """Whether an impersonation session may still act: unexpired, its admin still an active
    admin of the same organisation, and its user not (since) made an admin."""
    return (
        row["expires_at"] > utcnow()
        and row["impersonator_status"] == "active"
        and row["impersonator_role"] == ADMIN_ROLE
        and row["impersonator_organization_id"] == row["organization_id"]
        and row["role_name"] != ADMIN_ROLE
    )


async def _authenticate_api_key(session: AsyncSession, key: str) -> Actor:
    found = await repository.get_api_key_by_hash(session, token_digest(key))
    if found is None or found[0].revoked_at is not None:
        raise InvalidApiKey("Invalid API key")
    row, creator = found
    # A key never outranks the person who made it: it stops with them and shrinks with them.
    if creator is None or creator.status != "active":
        raise ApiKeyCreatorInactive("The API key's creator is no longer active")
    now = utcnow()
    # Avoid a write per request: last-used is accurate to the minute.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        if may_write():
            row.last_used_at = now
        elif _touch_due(row.id, now):
            # A read-only request must not write (SQLite could not queue for the lock).
            enqueue_job(session, "auth.touch_api_key", str(row.id), now.isoformat())
    return Actor(
        organization_id=row.organization_id,
        user_id=row.created_by,
        role="api_key",
        permissions=frozenset(row.scopes) & frozenset(creator.permissions),
        row_scope=RowScope(creator.row_scope),
        team_id=creator.team_id,
        api_key_id=row.id,
    )


# When this process last queued a key's touch: a burst of reads queues one job a minute.
_touch_queued: dict[uuid.UUID, datetime] = {}


def _touch_due(key_id: uuid.UUID, now: datetime) -> bool:
    last = _touch_queued.get(key_id)
    if last is not None and now - last < timedelta(minutes=1):
        return False
    if len(_touch_queued) > 10_000:
        _touch_queued.clear()
    _touch_queued[key_id] = now
    return True


# Where an impersonation never reaches: the admin console (users, roles, keys, settings…).
ADMIN_PATH = "/api/v1/admin"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def check_impersonated_request(
    session: AsyncSession, actor: Actor, method: str, path: str
) -> None:
    """403 for an impersonation token on `/api/v1/admin/*`; audit every other write it makes.

    `path` is the canonical path (seed aliases are rewritten before routing). The audit row
    names the impersonated user and the admin, so a write the endpoint does not audit itself
    (marking a notification read…) is on record too; it rolls back with a failed request.
    """
    if path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/"):
        raise ImpersonationRestricted("An impersonation cannot use the admin console")
    if method not in _READ_METHODS:
        await record(
            session,
            actor=actor,
            organization_id=actor.organization_id,
            action="impersonation.request",
            resource_type="request",
            resource_id=None,
            after={"method": method, "path": path},
        )


async def impersonation_of(session: AsyncSession, actor: Actor) -> Impersonation | None:
    """The admin acting as `actor` and until when (None unless an impersonation)."""
    if actor.impersonator_id is None or actor.session_id is None:
        return None
    admin = await users.get_with_role(session, actor.impersonator_id)
    row = await repository.get_session_row(session, actor.session_id)
    if admin is None or row is None:
        return None
    return Impersonation(
        admin=UserRef(
            id=admin.id, email=admin.email, full_name=admin.full_name, role=admin.role.name
        ),
        expires_at=row.expires_at,
    )
