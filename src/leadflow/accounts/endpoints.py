"""/api/v1/admin/users… and /api/v1/admin/permissions (seed 003's admin console), and
/api/v1/auth/accept-invite and /api/v1/auth/impersonation."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from leadflow.accounts import impersonation, invitations, service
from leadflow.accounts.schemas import (
    AcceptInviteIn,
    AdminUserCreate,
    AdminUserCreated,
    AdminUserList,
    AdminUserRead,
    AdminUserUpdate,
    BulkActionIn,
    BulkActionOut,
    Handover,
    ImpersonationOut,
    InviteOut,
    PermissionRead,
)
from leadflow.auth.dependencies import CurrentPerson, require_permission
from leadflow.auth.schemas import TokenPair
from leadflow.authz.actor import Actor
from leadflow.authz.permissions import ALL_PERMISSIONS, PERMISSION_DESCRIPTIONS
from leadflow.config import Settings
from leadflow.db.session import SessionDep
from leadflow.kit.pagination import PageParams, page_params
from leadflow.users import service as users
from leadflow.users.repository import UserFilter
from leadflow.users.schemas import UserStatus

admin_users_router = APIRouter(tags=["admin"])
permissions_router = APIRouter(tags=["admin"])
auth_router = APIRouter(tags=["auth"])

UserAdmin = Annotated[Actor, Depends(require_permission("admin:users"))]
RoleAdmin = Annotated[Actor, Depends(require_permission("admin:roles"))]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(_settings)]


@admin_users_router.get("", response_model=AdminUserList)
async def list_users(
    session: SessionDep,
    actor: UserAdmin,
    page: Annotated[PageParams, Depends(page_params)],
    search: Annotated[str | None, Query(max_length=200)] = None,
    role: Annotated[str | None, Query(max_length=60)] = None,
    status: UserStatus | None = None,
) -> AdminUserList:
    """Members of the organisation by name: `{users, total, page, limit, offset}`."""
    f = UserFilter(search, role, status.value if status else None)
    return await service.list_members(session, actor, f, page)


@admin_users_router.post("", response_model=AdminUserCreated, status_code=201)
async def create_user(
    session: SessionDep, actor: UserAdmin, settings: AppSettings, body: AdminUserCreate
) -> AdminUserCreated:
    """A new member; `send_invite` emails a one-time link to set a password (72 hours)."""
    return await service.create_member(session, actor, settings, body)


@admin_users_router.post("/bulk-action", response_model=BulkActionOut)
async def bulk_action(
    session: SessionDep, actor: UserAdmin, settings: AppSettings, body: BulkActionIn
) -> BulkActionOut:
    """activate | deactivate | delete (= deactivate) up to 100 members; a result per id."""
    return await service.bulk_action(session, actor, settings, body)


@admin_users_router.get("/{user_id}", response_model=AdminUserRead)
async def get_user(session: SessionDep, actor: UserAdmin, user_id: uuid.UUID) -> AdminUserRead:
    """One member."""
    return service.to_read(await users.get_user(session, actor, user_id))


@admin_users_router.patch("/{user_id}", response_model=AdminUserRead)
async def update_user(
    session: SessionDep,
    actor: UserAdmin,
    settings: AppSettings,
    user_id: uuid.UUID,
    body: AdminUserUpdate,
) -> AdminUserRead:
    """Change name, email, phone, role, status or team (only the fields sent)."""
    return service.to_read(await service.update_member(session, actor, settings, user_id, body))


@admin_users_router.delete("/{user_id}", response_model=Handover)
async def delete_user(
    session: SessionDep,
    actor: UserAdmin,
    settings: AppSettings,
    user_id: uuid.UUID,
    reassign_to: uuid.UUID | None = None,
) -> Handover:
    """Deactivate a member; their open leads go to `reassign_to` or by the assignment rules."""
    return await service.deactivate_member(session, actor, settings, user_id, reassign_to)


@admin_users_router.post("/{user_id}/invite", response_model=InviteOut)
async def invite_user(
    session: SessionDep, actor: UserAdmin, settings: AppSettings, user_id: uuid.UUID
) -> InviteOut:
    """Send a new invitation to a member without a password (the previous link stops)."""
    invitation = await service.invite(session, actor, settings, user_id)
    return InviteOut(invite_sent=True, expires_at=invitation.expires_at)


@admin_users_router.post("/{user_id}/impersonate", response_model=ImpersonationOut)
async def impersonate_user(
    session: SessionDep, actor: UserAdmin, settings: AppSettings, user_id: uuid.UUID
) -> ImpersonationOut:
    """A 15-minute token acting as the member (admins in person only; never an admin)."""
    return await impersonation.start(session, settings, actor, user_id)


@permissions_router.get("", response_model=list[PermissionRead])
async def list_permissions(actor: RoleAdmin) -> list[PermissionRead]:
    """Every permission a role can hold, with what it allows."""
    return [PermissionRead(name=p, description=PERMISSION_DESCRIPTIONS[p]) for p in ALL_PERMISSIONS]


@auth_router.post("/accept-invite", response_model=TokenPair)
async def accept_invite(
    session: SessionDep, settings: AppSettings, body: AcceptInviteIn
) -> TokenPair:
    """Set the password with the invitation's token (once, within 72 hours); signs in."""
    return await invitations.accept(session, settings, body.token, body.password)


@auth_router.delete("/impersonation", status_code=status.HTTP_204_NO_CONTENT)
async def end_impersonation(session: SessionDep, actor: CurrentPerson) -> Response:
    """With an impersonation token: end it. With your own token: end those you started."""
    await impersonation.end(session, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
