"""Organisations, roles and teams: creation and the rules around them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import (
    delete_recorded,
    diff,
    record,
    record_create,
    record_update,
    snapshot,
)
from leadflow.authz.actor import Actor
from leadflow.authz.grants import ensure_holds
from leadflow.authz.permissions import SYSTEM_ROLES
from leadflow.calendar import BusinessCalendar
from leadflow.exceptions import NotFound, ValidationFailed
from leadflow.kit import events
from leadflow.models.organization import Organization
from leadflow.models.pipeline_stage import PipelineStage
from leadflow.models.role import Role
from leadflow.models.team import Team
from leadflow.organizations import repository
from leadflow.organizations.errors import (
    RoleExists,
    RoleInUse,
    SelfRoleChange,
    SystemRole,
    TeamExists,
)
from leadflow.organizations.events import TimezoneSet
from leadflow.organizations.schemas import (
    OrgSettings,
    OrgSettingsUpdate,
    RoleCreate,
    RoleUpdate,
    TeamIn,
)

# key, name, category, probability
DEFAULT_STAGES: tuple[tuple[str, str, str, int], ...] = (
    ("new", "New", "open", 10),
    ("contacted", "Contacted", "open", 20),
    ("qualified", "Qualified", "open", 40),
    ("proposal", "Proposal", "open", 60),
    ("won", "Won", "won", 100),
    ("lost", "Lost", "lost", 0),
)


async def create_organization(session: AsyncSession, *, name: str) -> Organization:
    """A new organisation with its four system roles and the default pipeline."""
    org = Organization(name=name, settings={})
    session.add(org)
    await session.flush()
    for spec in SYSTEM_ROLES.values():
        session.add(
            Role(
                organization_id=org.id,
                name=spec.name,
                description=spec.description,
                permissions=list(spec.permissions),
                row_scope=spec.row_scope.value,
                is_system=True,
            )
        )
    for position, (key, stage_name, category, probability) in enumerate(DEFAULT_STAGES):
        session.add(
            PipelineStage(
                organization_id=org.id,
                key=key,
                name=stage_name,
                position=position,
                category=category,
                probability=probability,
            )
        )
    await session.flush()
    await events.publish(
        session, TimezoneSet(organization_id=org.id, timezone=BusinessCalendar().timezone)
    )
    return org


async def get_organization(session: AsyncSession, org_id: uuid.UUID) -> Organization:
    """The organisation, or 404."""
    org = await repository.get_organization(session, org_id)
    if org is None:
        raise NotFound("Organization not found")
    return org


async def role_by_name(session: AsyncSession, org_id: uuid.UUID, name: str) -> Role:
    """A role of the organisation by name, or a 422 naming the field."""
    role = await repository.get_role_by_name(session, org_id, name)
    if role is None:
        raise ValidationFailed(f"Unknown role '{name}'", field="role")
    return role


async def list_roles(session: AsyncSession, actor: Actor) -> list[Role]:
    """Roles of the actor's organisation."""
    return await repository.list_roles(session, actor.organization_id)


async def get_role(session: AsyncSession, actor: Actor, role_id: uuid.UUID) -> Role:
    """A role of the actor's organisation, or 404."""
    role = await repository.get_role(session, actor.organization_id, role_id)
    if role is None:
        raise NotFound("Role not found")
    return role


async def create_role(session: AsyncSession, actor: Actor, data: RoleCreate) -> Role:
    """A custom role; names are unique per organisation."""
    ensure_holds(
        actor, role_name=data.name, permissions=data.permissions, row_scope=data.row_scope.value
    )
    if await repository.get_role_by_name(session, actor.organization_id, data.name):
        raise RoleExists(f"A role named '{data.name}' already exists")
    role = Role(
        organization_id=actor.organization_id,
        name=data.name,
        description=data.description,
        permissions=data.permissions,
        row_scope=data.row_scope.value,
        is_system=False,
    )
    session.add(role)
    await session.flush()
    await record_create(session, actor, role, "role.create", "role")
    return role


async def update_role(
    session: AsyncSession, actor: Actor, role_id: uuid.UUID, data: RoleUpdate
) -> Role:
    """Change a custom role; system roles are fixed."""
    role = await get_role(session, actor, role_id)
    if role.is_system:
        raise SystemRole("System roles cannot be changed")
    _ensure_may_edit(actor, role)
    before = snapshot(role)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True, exclude_none=True)
    if "row_scope" in changes:
        changes["row_scope"] = str(changes["row_scope"])
    ensure_holds(
        actor,
        role_name=role.name,
        permissions=changes.get("permissions", role.permissions),
        row_scope=changes.get("row_scope", role.row_scope),
    )
    for key, value in changes.items():
        setattr(role, key, value)
    await session.flush()
    await record_update(session, actor, role, before, "role.update", "role")
    return role


async def delete_role(session: AsyncSession, actor: Actor, role_id: uuid.UUID) -> None:
    """Delete a custom role nobody holds."""
    role = await get_role(session, actor, role_id)
    if role.is_system:
        raise SystemRole("System roles cannot be deleted")
    _ensure_may_edit(actor, role)
    if await repository.count_role_users(session, role.id):
        raise RoleInUse("The role is still assigned to users")
    await delete_recorded(session, actor, role, "role.delete", "role")


def _ensure_may_edit(actor: Actor, role: Role) -> None:
    """Nobody edits the role they hold, nor a role holding more than they do."""
    if actor.api_key_id is None and actor.role == role.name:
        raise SelfRoleChange("You cannot change the role you hold")
    ensure_holds(
        actor,
        role_name=role.name,
        permissions=role.permissions,
        row_scope=role.row_scope,
        what="change",
    )


async def list_teams(session: AsyncSession, actor: Actor) -> list[Team]:
    """Teams of the actor's organisation."""
    return await repository.list_teams(session, actor.organization_id)


async def get_team(session: AsyncSession, actor: Actor, team_id: uuid.UUID) -> Team:
    """A team of the actor's organisation, or 404."""
    team = await repository.get_team(session, actor.organization_id, team_id)
    if team is None:
        raise NotFound("Team not found")
    return team


async def create_team(session: AsyncSession, actor: Actor, data: TeamIn) -> Team:
    """A new team; names are unique per organisation."""
    if await repository.get_team_by_name(session, actor.organization_id, data.name):
        raise TeamExists(f"A team named '{data.name}' already exists")
    team = Team(organization_id=actor.organization_id, name=data.name)
    session.add(team)
    await session.flush()
    await record_create(session, actor, team, "team.create", "team")
    return team


async def rename_team(
    session: AsyncSession, actor: Actor, team_id: uuid.UUID, data: TeamIn
) -> Team:
    """Rename a team."""
    team = await get_team(session, actor, team_id)
    other = await repository.get_team_by_name(session, actor.organization_id, data.name)
    if other is not None and other.id != team.id:
        raise TeamExists(f"A team named '{data.name}' already exists")
    before = snapshot(team)
    team.name = data.name
    await session.flush()
    await record_update(session, actor, team, before, "team.update", "team")
    return team


async def delete_team(session: AsyncSession, actor: Actor, team_id: uuid.UUID) -> None:
    """Delete a team; its members keep their accounts without a team."""
    team = await get_team(session, actor, team_id)
    await delete_recorded(session, actor, team, "team.delete", "team")


async def org_settings(session: AsyncSession, org_id: uuid.UUID) -> OrgSettings:
    """The organisation's settings with defaults filled in."""
    org = await get_organization(session, org_id)
    known = {k: v for k, v in (org.settings or {}).items() if k in OrgSettings.model_fields}
    return OrgSettings(**known)


async def update_org_settings(
    session: AsyncSession, actor: Actor, data: OrgSettingsUpdate
) -> OrgSettings:
    """Change organisation settings; the business calendar is validated before it is stored."""
    org = await get_organization(session, actor.organization_id)
    before = dict(org.settings or {})
    changes = data.model_dump(exclude_unset=True)
    if changes.get("calendar") is not None:
        try:
            changes["calendar"] = BusinessCalendar.from_dict(changes["calendar"]).to_dict()
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="calendar") from None
    org.settings = {**before, **changes}
    await session.flush()
    zone_before = BusinessCalendar.from_dict(before.get("calendar")).timezone
    zone_after = BusinessCalendar.from_dict(org.settings.get("calendar")).timezone
    if zone_after != zone_before:
        await events.publish(session, TimezoneSet(organization_id=org.id, timezone=zone_after))
    b, a = diff(before, org.settings)
    await record(
        session,
        actor=actor,
        organization_id=org.id,
        action="organization.settings",
        resource_type="organization",
        resource_id=org.id,
        before=b,
        after=a,
    )
    return await org_settings(session, org.id)
