"""Member administration of the admin console: list, create (and invite), change, deactivate
with lead handover, bulk actions.

The rules of user management stay in `users.service` (nobody grants more than they hold,
nobody changes their own role or status, the last admin stays); this module adds the seed's
shapes, invitations and what a deactivation does to the member's leads.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts import handover, invitations, repository
from leadflow.accounts.handover import HandoverResult
from leadflow.accounts.schemas import (
    AdminUserCreate,
    AdminUserCreated,
    AdminUserList,
    AdminUserRead,
    AdminUserUpdate,
    BulkAction,
    BulkActionIn,
    BulkActionOut,
    BulkResult,
    Handover,
)
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.exceptions import LeadflowError, ValidationFailed
from leadflow.kit.clock import utcnow
from leadflow.kit.normalize import normalize_phone
from leadflow.kit.pagination import PageParams
from leadflow.models.invitation import Invitation
from leadflow.models.user import User
from leadflow.users import repository as users_repo
from leadflow.users import service as users
from leadflow.users.repository import UserFilter
from leadflow.users.schemas import UserStatus


def to_read(user: User) -> AdminUserRead:
    """A member in the admin console's shape (role loaded)."""
    return AdminUserRead(
        id=user.id,
        full_name=user.full_name,
        email=user.email,
        phone=user.phone,
        role=user.role.name,
        status=user.status,
        team_id=user.team_id,
        has_password=user.password_hash is not None,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


async def list_members(
    session: AsyncSession, actor: Actor, f: UserFilter, page: PageParams
) -> AdminUserList:
    """A page of the organisation's members by name (seed shape with a 1-based `page`)."""
    rows, total = await users.list_users(session, actor, f, page)
    return AdminUserList(
        users=[to_read(u) for u in rows],
        total=total,
        page=page.offset // page.limit + 1,
        limit=page.limit,
        offset=page.offset,
    )


def _phone(settings: Settings, raw: str | None) -> str | None:
    try:
        return normalize_phone(raw, settings.default_phone_region)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="phone") from None


async def create_member(
    session: AsyncSession, actor: Actor, settings: Settings, data: AdminUserCreate
) -> AdminUserCreated:
    """A new member without a password; with `send_invite` the invitation goes out too."""
    if data.send_invite and data.status is not UserStatus.ACTIVE:
        raise ValidationFailed("Only an active user can be invited", field="send_invite")
    user = await users.add_member(
        session,
        actor,
        email=data.email,
        full_name=data.full_name,
        role=data.role,
        team_id=data.team_id,
        phone=_phone(settings, data.phone),
        status=data.status,
    )
    invitation: Invitation | None = None
    if data.send_invite:
        invitation = await invitations.send_invitation(session, actor, settings, user)
    return AdminUserCreated(
        user_id=user.id,
        invite_sent=invitation is not None,
        invite_expires_at=invitation.expires_at if invitation else None,
    )


async def invite(
    session: AsyncSession, actor: Actor, settings: Settings, user_id: uuid.UUID
) -> Invitation:
    """(Re)send a member's invitation; the previous link stops working."""
    user = await users.get_user(session, actor, user_id)
    users.ensure_may_change(actor, user)
    return await invitations.send_invitation(session, actor, settings, user)


async def _reassign_target(
    session: AsyncSession, actor: Actor, to: uuid.UUID | None, leaving: set[uuid.UUID]
) -> None:
    """A named recipient of the open leads: an active member, not one being deactivated."""
    if to is None:
        return
    actor.require("leads:assign")
    if to in leaving or not await users_repo.is_active_member(session, actor.organization_id, to):
        raise ValidationFailed(
            "reassign_to must be an active user of this organisation who stays active",
            field="reassign_to",
        )


async def update_member(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    user_id: uuid.UUID,
    data: AdminUserUpdate,
) -> User:
    """Change a member; `status: inactive` hands their open leads over as DELETE does."""
    fields: dict[str, Any] = data.model_dump(exclude_unset=True)
    to = fields.pop("reassign_to", None)
    if to is not None and fields.get("status") != UserStatus.INACTIVE:
        raise ValidationFailed("reassign_to goes with status 'inactive'", field="reassign_to")
    for key in ("full_name", "email", "role", "status"):
        if key in fields and fields[key] is None:
            raise ValidationFailed(f"{key} cannot be null", field=key)
    if "phone" in fields:
        fields["phone"] = _phone(settings, fields["phone"])
    user = await users.get_user(session, actor, user_id)
    await _reassign_target(session, actor, to, {user.id})
    was_active = user.status == UserStatus.ACTIVE.value
    email = user.email
    await users.apply_changes(session, actor, user, fields)
    now = utcnow()
    if user.email != email:
        # The invitation went to the old address.
        await repository.revoke_invitations(session, user.id, now)
    if was_active and user.status == UserStatus.INACTIVE.value:
        await _after_deactivation(session, actor, settings, user, to)
    return user


async def deactivate_member(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    user_id: uuid.UUID,
    reassign_to: uuid.UUID | None,
) -> Handover:
    """Deactivate a member (never deleted: history points at them): sessions and invitations
    end at once, their open leads go to `reassign_to` or by the assignment rules."""
    user = await users.get_user(session, actor, user_id)
    await _reassign_target(session, actor, reassign_to, {user.id})
    return await _deactivate(session, actor, settings, user, reassign_to)


async def _deactivate(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    user: User,
    to: uuid.UUID | None,
) -> Handover:
    if user.status == UserStatus.INACTIVE.value:
        return Handover(user_id=user.id, status=user.status, leads_reassigned=0, leads_unassigned=0)
    await users.deactivate_user(session, actor, user.id)
    moved = await _after_deactivation(session, actor, settings, user, to)
    return Handover(
        user_id=user.id,
        status=user.status,
        leads_reassigned=moved.reassigned,
        leads_unassigned=moved.unassigned,
    )


async def _after_deactivation(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    user: User,
    to: uuid.UUID | None,
) -> HandoverResult:
    now = utcnow()
    await repository.revoke_invitations(session, user.id, now)
    # Sessions of the user (impersonations of them included) were revoked with the status.
    await repository.revoke_impersonations_by(session, user.id, now, "user_deactivated")
    return await handover.hand_over(session, actor, settings, user.id, to)


async def _activate(session: AsyncSession, actor: Actor, user: User) -> Handover:
    if user.status != UserStatus.ACTIVE.value:
        await users.apply_changes(session, actor, user, {"status": UserStatus.ACTIVE.value})
    return Handover(user_id=user.id, status=user.status, leads_reassigned=0, leads_unassigned=0)


async def bulk_action(
    session: AsyncSession, actor: Actor, settings: Settings, data: BulkActionIn
) -> BulkActionOut:
    """Apply one action to each member, each on its own: a member that cannot (another
    organisation, yourself, the last admin, more power than yours) gets its error and the
    others go on. `delete` deactivates, as `DELETE /admin/users/{id}` does."""
    leaving = set(data.user_ids) if data.action is not BulkAction.ACTIVATE else set()
    if data.reassign_to is not None and data.action is BulkAction.ACTIVATE:
        raise ValidationFailed("reassign_to goes with deactivate or delete", field="reassign_to")
    await _reassign_target(session, actor, data.reassign_to, leaving)
    results: list[BulkResult] = []
    for user_id in data.user_ids:
        try:
            # A savepoint per member: a failure undoes only that member's changes.
            async with session.begin_nested():
                user = await users.get_user(session, actor, user_id)
                if data.action is BulkAction.ACTIVATE:
                    done = await _activate(session, actor, user)
                else:
                    done = await _deactivate(session, actor, settings, user, data.reassign_to)
        except LeadflowError as exc:
            results.append(
                BulkResult(
                    user_id=user_id,
                    ok=False,
                    http_status=exc.status,
                    code=exc.code,
                    detail=exc.detail,
                )
            )
            continue
        results.append(
            BulkResult(
                user_id=user_id,
                ok=True,
                status=done.status,
                leads_reassigned=done.leads_reassigned,
                leads_unassigned=done.leads_unassigned,
            )
        )
    ok = sum(1 for r in results if r.ok)
    return BulkActionOut(
        action=data.action, results=results, succeeded=ok, failed=len(results) - ok
    )
