"""Queries for organisations, roles and teams (always within one organisation)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.organization import Organization
from leadflow.models.role import Role
from leadflow.models.team import Team
from leadflow.models.user import User


async def get_organization(session: AsyncSession, org_id: uuid.UUID) -> Organization | None:
    """The organisation with `org_id`."""
    return await session.get(Organization, org_id)


async def list_roles(session: AsyncSession, org_id: uuid.UUID) -> list[Role]:
    """Every role of the organisation, system roles first."""
    rows = await session.scalars(
        select(Role)
        .where(Role.organization_id == org_id)
        .order_by(Role.is_system.desc(), Role.name)
    )
    return list(rows)


async def get_role(session: AsyncSession, org_id: uuid.UUID, role_id: uuid.UUID) -> Role | None:
    """A role of the organisation by id."""
    return await session.scalar(
        select(Role).where(Role.organization_id == org_id, Role.id == role_id)
    )


async def get_role_by_name(session: AsyncSession, org_id: uuid.UUID, name: str) -> Role | None:
    """A role of the organisation by name."""
    return await session.scalar(
        select(Role).where(Role.organization_id == org_id, Role.name == name)
    )


async def count_role_users(session: AsyncSession, role_id: uuid.UUID) -> int:
    """How many users hold the role."""
    return int(await session.scalar(select(func.count()).where(User.role_id == role_id)) or 0)


async def list_teams(session: AsyncSession, org_id: uuid.UUID) -> list[Team]:
    """Teams of the organisation by name."""
    rows = await session.scalars(
        select(Team).where(Team.organization_id == org_id).order_by(Team.name)
    )
    return list(rows)


async def get_team(session: AsyncSession, org_id: uuid.UUID, team_id: uuid.UUID) -> Team | None:
    """A team of the organisation."""
    return await session.scalar(
        select(Team).where(Team.organization_id == org_id, Team.id == team_id)
    )


async def get_team_by_name(session: AsyncSession, org_id: uuid.UUID, name: str) -> Team | None:
    """A team of the organisation by name."""
    return await session.scalar(
        select(Team).where(Team.organization_id == org_id, Team.name == name)
    )
