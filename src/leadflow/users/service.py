"""User management inside one organisation."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import diff, record, record_update, snapshot
from leadflow.authz.actor import Actor
from leadflow.authz.grants import ADMIN_ROLE, ensure_holds, ensure_may_set_teams
from leadflow.exceptions import NotFound
from leadflow.kit.pagination import PageParams
from leadflow.kit.passwords import hash_password_async
from leadflow.models.role import Role
from leadflow.models.user import User
from leadflow.organizations import service as orgs
from leadflow.organizations.errors import SelfRoleChange
from leadflow.users import repository
from leadflow.users.errors import EmailTaken, LastAdmin, SelfDeactivation, SelfTeamChange
from leadflow.users.repository import UserFilter
from leadflow.users.schemas import UserCreate, UserRead, UserStatus, UserUpdate

_HIDDEN = frozenset({"password_hash"})


def to_read(user: User) -> UserRead:
    """Response shape of a user (role loaded)."""
    return UserRead(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role.name,
        status=user.status,
        team_id=user.team_id,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
    )


def _audit_view(user: User) -> dict[str, object]:
    data = snapshot(user, exclude=_HIDDEN)
    data["role"] = user.role.name
    return data


async def get_user(session: AsyncSession, actor: Actor, user_id: uuid.UUID) -> User:
    """A user of the actor's organisation, or 404."""
    user = await repository.get(session, actor, user_id)
    if user is None:
        raise NotFound("User not found")
    return user


async def list_users(
    session: AsyncSession, actor: Actor, f: UserFilter, page: PageParams
) -> tuple[list[User], int]:
    """Users of the actor's organisation."""
    return await repository.list_users(session, actor, f, page)


async def create_user(session: AsyncSession, actor: Actor, data: UserCreate) -> User:
    """Add a member; the email must be new to Leadflow."""
    # Hashed off the event loop and before the first query, so no connection waits on argon2.
    password_hash = await hash_password_async(data.password) if data.password else None
    return await add_member(
        session,
        actor,
        email=data.email,
        full_name=data.full_name,
        role=data.role,
        team_id=data.team_id,
        password_hash=password_hash,
    )


async def add_member(
    session: AsyncSession,
    actor: Actor,
    *,
    email: str,
    full_name: str,
    role: str,
    team_id: uuid.UUID | None = None,
    phone: str | None = None,
    status: UserStatus = UserStatus.ACTIVE,
    password_hash: str | None = None,
) -> User:
    """A new member of the actor's organisation (audited `user.create`); the email (lower-cased
    by the caller) must be new to Leadflow, the role within the actor's own power."""
    if await repository.get_by_email(session, email):
        raise EmailTaken("A user with this email already exists")
    role_row = await orgs.role_by_name(session, actor.organization_id, role)
    _ensure_holds_role(actor, role_row)
    if team_id is not None:
        ensure_may_set_teams(actor)
        await orgs.get_team(session, actor, team_id)
    user = User(
        organization_id=actor.organization_id,
        email=email,
        full_name=full_name,
        phone=phone,
        password_hash=password_hash,
        role_id=role_row.id,
        team_id=team_id,
        status=status.value,
    )
    user.role = role_row
    session.add(user)
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="user.create",
        resource_type="user",
        resource_id=user.id,
        after=_audit_view(user),
    )
    return user


async def update_user(
    session: AsyncSession, actor: Actor, user_id: uuid.UUID, data: UserUpdate
) -> User:
    """Change name, role, status or team; deactivation ends the user's sessions at once."""
    user = await get_user(session, actor, user_id)
    await apply_changes(session, actor, user, data.model_dump(exclude_unset=True))
    return user


async def apply_changes(
    session: AsyncSession, actor: Actor, user: User, fields: Mapping[str, Any]
) -> None:
    """Apply `fields` (any of full_name, email, phone, role, team_id, status) to `user`, audited
    as one `user.update`. Email is lower-cased and phone normalised by the caller."""
    _ensure_holds_role(actor, user.role, what="change")
    before = _audit_view(user)
    if fields.get("full_name"):
        user.full_name = fields["full_name"]
    if fields.get("email") and fields["email"] != user.email:
        if await repository.get_by_email(session, fields["email"]):
            raise EmailTaken("A user with this email already exists")
        user.email = fields["email"]
    if "phone" in fields:
        user.phone = fields["phone"]
    if fields.get("role") and fields["role"] != user.role.name:
        role = await orgs.role_by_name(session, actor.organization_id, fields["role"])
        if user.id == actor.user_id:
            raise SelfRoleChange("You cannot change your own role")
        _ensure_holds_role(actor, role)
        if user.role.name == ADMIN_ROLE:
            await _ensure_other_admin(session, user)
        user.role_id = role.id
        user.role = role
    if "team_id" in fields and fields["team_id"] != user.team_id:
        # A team decides whose leads a team-scoped role sees: moving oneself (or others into
        # one's own team) would widen a scope, so teams are set by organisation-wide admins.
        if user.id == actor.user_id:
            raise SelfTeamChange("You cannot change your own team")
        ensure_may_set_teams(actor)
        if fields["team_id"] is not None:
            await orgs.get_team(session, actor, fields["team_id"])
        user.team_id = fields["team_id"]
    if fields.get("status"):
        await _set_status(session, actor, user, UserStatus(fields["status"]))
    await session.flush()
    await record_update(session, actor, user, before, "user.update", "user", view=_audit_view)


async def deactivate_user(session: AsyncSession, actor: Actor, user_id: uuid.UUID) -> User:
    """Deactivate (never hard-delete: history points at users)."""
    user = await get_user(session, actor, user_id)
    _ensure_holds_role(actor, user.role, what="change")
    before = _audit_view(user)
    await _set_status(session, actor, user, UserStatus.INACTIVE)
    await session.flush()
    b, a = diff(before, _audit_view(user))
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="user.deactivate",
        resource_type="user",
        resource_id=user.id,
        before=b,
        after=a,
    )
    return user


async def _set_status(session: AsyncSession, actor: Actor, user: User, status: UserStatus) -> None:
    if status.value == user.status:
        return
    if user.id == actor.user_id:
        raise SelfDeactivation("You cannot change your own status")
    if status is UserStatus.INACTIVE:
        if user.role.name == ADMIN_ROLE:
            await _ensure_other_admin(session, user)
        await repository.revoke_sessions(session, user.id, "user_deactivated")
    user.status = status.value


def ensure_may_change(actor: Actor, user: User) -> None:
    """403 unless the actor holds at least the power of `user`'s role (role loaded)."""
    _ensure_holds_role(actor, user.role, what="change")


def _ensure_holds_role(actor: Actor, role: Role, *, what: str = "grant") -> None:
    """Grant only roles within the actor's own power; change only users within it."""
    ensure_holds(
        actor,
        role_name=role.name,
        permissions=role.permissions,
        row_scope=role.row_scope,
        what=what,
    )


async def _ensure_other_admin(session: AsyncSession, user: User) -> None:
    """409 when `user` is the organisation's last active admin."""
    admins = await repository.lock_active_admins(session, user.organization_id)
    if user.status == UserStatus.ACTIVE.value and not (set(admins) - {user.id}):
        raise LastAdmin("The organisation's last active admin cannot be demoted or deactivated")
