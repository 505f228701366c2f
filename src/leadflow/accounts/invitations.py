"""Invitations: a one-time link, valid 72 hours, with which a new member sets their password.

Only the SHA-256 of a token is stored. The token itself is an HMAC of the invitation's id
under the secret key, so the outbox row carries no link either: the delivery handler
(`accounts.jobs`) derives the token and renders the email when it sends it. Rotating the
secret key invalidates unsent and outstanding links (send a new invitation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts import repository
from leadflow.accounts.errors import (
    InvitationExpired,
    InvitationInvalid,
    InvitationNotNeeded,
    InvitationUsed,
    UserInactive,
)
from leadflow.audit.service import record
from leadflow.auth.schemas import TokenPair
from leadflow.auth.service import actor_for_user, start_session
from leadflow.authz.actor import Actor
from leadflow.calendar.organization import calendar_of
from leadflow.config import Settings
from leadflow.db.base import new_id
from leadflow.kit.clock import utcnow
from leadflow.kit.passwords import hash_password_async
from leadflow.kit.security import token_digest
from leadflow.models.invitation import Invitation
from leadflow.models.user import User
from leadflow.notifications.email import render
from leadflow.organizations import service as orgs
from leadflow.users import repository as users
from leadflow.users.schemas import UserStatus
from leadflow.worker import outbox

INVITATION_TTL = timedelta(hours=72)
# The outbox kind of invitation emails (delivered by `accounts.jobs`).
INVITATION_KIND = "invitation_email"
ACCEPT_PATH = "/accept-invite"
# Domain separation: an HMAC made for anything else with the same key is no invitation token.
_PURPOSE = b"leadflow.invitation\x00"


def invitation_token(secret: str, invitation_id: uuid.UUID) -> str:
    """The token of an invitation (URL-safe, 43 characters)."""
    key = hashlib.sha256(_PURPOSE + secret.encode()).digest()
    digest = hmac.new(key, invitation_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def accept_url(settings: Settings, token: str) -> str:
    """The link the invitation email carries (a page that posts to `/auth/accept-invite`)."""
    return f"{settings.public_url.rstrip('/')}{ACCEPT_PATH}?token={token}"


async def send_invitation(
    session: AsyncSession, actor: Actor, settings: Settings, user: User
) -> Invitation:
    """Invite a member without a password: a new link (older ones are withdrawn), emailed
    through the outbox after commit, audited `user.invite`."""
    if user.status != UserStatus.ACTIVE.value:
        raise UserInactive("An inactive user cannot be invited; activate them first")
    if user.password_hash is not None:
        raise InvitationNotNeeded("The user has already set a password")
    now = utcnow()
    await repository.revoke_invitations(session, user.id, now)
    invitation_id = new_id()
    token = invitation_token(settings.resolved_secret_key(), invitation_id)
    invitation = Invitation(
        id=invitation_id,
        organization_id=user.organization_id,
        user_id=user.id,
        token_hash=token_digest(token),
        invited_by=actor.user_id,
        created_at=now,
        expires_at=now + INVITATION_TTL,
    )
    session.add(invitation)
    await session.flush()
    payload = await _email_payload(session, actor, user, invitation)
    await outbox.add(
        session,
        organization_id=user.organization_id,
        kind=INVITATION_KIND,
        delivery_key=f"invitation:{invitation.id}",
        payload=payload,
    )
    await record(
        session,
        actor=actor,
        organization_id=user.organization_id,
        action="user.invite",
        resource_type="user",
        resource_id=user.id,
        after={"invitation_id": invitation.id, "expires_at": invitation.expires_at},
    )
    return invitation


async def _email_payload(
    session: AsyncSession, actor: Actor, user: User, invitation: Invitation
) -> dict[str, Any]:
    org = await orgs.get_organization(session, user.organization_id)
    language = (await orgs.org_settings(session, org.id)).default_language
    names = await users.full_names(session, {actor.user_id} if actor.user_id else set())
    tz = (await calendar_of(session, org.id)).timezone  # the expiry as the team reads it
    context = {
        "recipient_name": user.full_name,
        "organization_name": org.name,
        "inviter_name": names.get(actor.user_id, org.name) if actor.user_id else org.name,
        "expires_local": f"{invitation.expires_at.astimezone(ZoneInfo(tz)):%d.%m.%Y %H:%M} ({tz})",
    }
    # Rendered once now (without the link) so a bad template or address fails the request,
    # not the delivery; the subject carries no secret and shows in the admin views.
    probe = render("invitation", language, {**context, "login_url": ""}, to=user.email)
    return {
        "to": probe.to,
        "subject": probe.subject,
        "language": language,
        "context": context,
        "invitation_id": str(invitation.id),
        "expires_at": invitation.expires_at.isoformat(),
    }


def _check(invitation: Invitation | None, now: datetime) -> Invitation:
    if invitation is None or invitation.revoked_at is not None:
        raise InvitationInvalid("This invitation link is not valid")
    if invitation.used_at is not None:
        raise InvitationUsed("This invitation link was already used")
    if invitation.expires_at <= now:
        raise InvitationExpired("This invitation link has expired; ask for a new one")
    return invitation


async def accept(session: AsyncSession, settings: Settings, token: str, password: str) -> TokenPair:
    """Set the invited member's password with a valid link (once) and sign them in."""
    digest = token_digest(token)
    # Check the link before hashing: an invalid token must not cost an argon2 run.
    _check(await repository.invitation_by_hash(session, digest), utcnow())
    # Nothing written yet: release the connection while argon2 runs (as the login does).
    await session.rollback()
    password_hash = await hash_password_async(password)
    now = utcnow()
    # Locked and checked again: of two concurrent uses of one link, the second sees it used.
    invitation = _check(await repository.invitation_by_hash(session, digest), now)
    user = await users.get_with_role(session, invitation.user_id)
    if (
        user is None
        or user.status != UserStatus.ACTIVE.value
        or user.organization_id != invitation.organization_id
    ):
        raise InvitationInvalid("This invitation link is not valid")
    invitation.used_at = now
    user.password_hash = password_hash
    await repository.revoke_invitations(session, user.id, now)
    await record(
        session,
        actor=actor_for_user(user),
        organization_id=user.organization_id,
        action="user.accept_invite",
        resource_type="user",
        resource_id=user.id,
        after={"invitation_id": invitation.id},
    )
    return await start_session(session, settings, user)
