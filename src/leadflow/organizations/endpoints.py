"""/api/v1/admin/roles and /api/v1/teams."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.organizations import service
from leadflow.organizations.schemas import (
    OrgSettings,
    OrgSettingsUpdate,
    RoleCreate,
    RoleRead,
    RoleUpdate,
    TeamIn,
    TeamRead,
)

roles_router = APIRouter(tags=["roles"])
settings_router = APIRouter(tags=["organization"])
SettingsAdmin = Annotated[Actor, Depends(require_permission("admin:settings"))]
teams_router = APIRouter(tags=["teams"])
RoleAdmin = Annotated[Actor, Depends(require_permission("admin:roles"))]
UserAdmin = Annotated[Actor, Depends(require_permission("admin:users"))]
Reader = Annotated[Actor, Depends(require_permission("users:read"))]


@roles_router.get("", response_model=list[RoleRead])
async def list_roles(session: SessionDep, actor: RoleAdmin) -> list[RoleRead]:
    """System and custom roles of the organisation."""
    return [RoleRead.model_validate(r) for r in await service.list_roles(session, actor)]


@roles_router.post("", response_model=RoleRead, status_code=status.HTTP_201_CREATED)
async def create_role(session: SessionDep, actor: RoleAdmin, body: RoleCreate) -> RoleRead:
    """A custom role: a set of permission strings and a row scope."""
    return RoleRead.model_validate(await service.create_role(session, actor, body))


@roles_router.patch("/{role_id}", response_model=RoleRead)
async def update_role(
    session: SessionDep, actor: RoleAdmin, role_id: uuid.UUID, body: RoleUpdate
) -> RoleRead:
    """Change a custom role."""
    return RoleRead.model_validate(await service.update_role(session, actor, role_id, body))


@roles_router.delete("/{role_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_role(session: SessionDep, actor: RoleAdmin, role_id: uuid.UUID) -> Response:
    """Delete a custom role nobody holds."""
    await service.delete_role(session, actor, role_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@teams_router.get("", response_model=list[TeamRead])
async def list_teams(session: SessionDep, actor: Reader) -> list[TeamRead]:
    """Teams of the organisation."""
    return [TeamRead.model_validate(t) for t in await service.list_teams(session, actor)]


@teams_router.post("", response_model=TeamRead, status_code=status.HTTP_201_CREATED)
async def create_team(session: SessionDep, actor: UserAdmin, body: TeamIn) -> TeamRead:
    """A new team."""
    return TeamRead.model_validate(await service.create_team(session, actor, body))


@teams_router.patch("/{team_id}", response_model=TeamRead)
async def rename_team(
    session: SessionDep, actor: UserAdmin, team_id: uuid.UUID, body: TeamIn
) -> TeamRead:
    """Rename a team."""
    return TeamRead.model_validate(await service.rename_team(session, actor, team_id, body))


@teams_router.delete("/{team_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_team(session: SessionDep, actor: UserAdmin, team_id: uuid.UUID) -> Response:
    """Delete a team."""
    await service.delete_team(session, actor, team_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@settings_router.get("", response_model=OrgSettings)
async def get_settings(session: SessionDep, actor: Reader) -> OrgSettings:
    """Organisation settings (any member may read them)."""
    return await service.org_settings(session, actor.organization_id)


@settings_router.patch("", response_model=OrgSettings)
async def update_settings(
    session: SessionDep, actor: SettingsAdmin, body: OrgSettingsUpdate
) -> OrgSettings:
    """Change organisation settings (admins)."""
    return await service.update_org_settings(session, actor, body)
