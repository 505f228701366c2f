"""Shared bits of the admin-console tests: counting rows, custom roles, invitation tokens."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.invitations import invitation_token
from leadflow.config import Settings
from leadflow.models.audit_log import AuditLog
from leadflow.models.invitation import Invitation
from leadflow.models.organization import Organization
from leadflow.models.role import Role

ADMIN_USERS = "/api/v1/admin/users"


async def count(session: AsyncSession, model: Any, *conds: Any) -> int:
    """Rows of `model` meeting `conds`."""
    return int(await session.scalar(select(func.count()).select_from(model).where(*conds)) or 0)


async def audit_actions(session: AsyncSession, org_id: uuid.UUID) -> list[str]:
    """The organisation's audit actions, oldest first."""
    rows = await session.scalars(
        select(AuditLog.action)
        .where(AuditLog.organization_id == org_id)
        .order_by(AuditLog.created_at, AuditLog.id)
    )
    return list(rows)


async def custom_role(
    session: AsyncSession, org: Organization, name: str, perms: list[str], scope: str = "org"
) -> Role:
    """A custom role of `org`, committed."""
    role = Role(
        organization_id=org.id,
        name=name,
        description="",
        permissions=perms,
        row_scope=scope,
        is_system=False,
    )
    session.add(role)
    await session.commit()
    return role


async def latest_invitation(session: AsyncSession, user_id: uuid.UUID | str) -> Invitation:
    """The newest invitation of a user (fresh from the database)."""
    row = await session.scalar(
        select(Invitation)
        .where(Invitation.user_id == uuid.UUID(str(user_id)))
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def token_of(session: AsyncSession, settings: Settings, user_id: uuid.UUID | str) -> str:
    """The token of a user's newest invitation, as its email carries it."""
    invitation = await latest_invitation(session, user_id)
    return invitation_token(settings.resolved_secret_key(), invitation.id)
