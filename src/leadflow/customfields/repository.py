"""Custom field definition queries, scoped to the organisation."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.models.custom_field import CustomFieldDefinition


async def list_fields(session: AsyncSession, org_id: uuid.UUID) -> list[CustomFieldDefinition]:
    """Definitions of the organisation, in display order."""
    rows = await session.scalars(
        select(CustomFieldDefinition)
        .where(CustomFieldDefinition.organization_id == org_id)
        .order_by(CustomFieldDefinition.position, CustomFieldDefinition.key)
    )
    return list(rows)


async def get(
    session: AsyncSession, actor: Actor, field_id: uuid.UUID
) -> CustomFieldDefinition | None:
    """A definition of the actor's organisation."""
    return await session.scalar(
        select(CustomFieldDefinition).where(
            CustomFieldDefinition.id == field_id,
            CustomFieldDefinition.organization_id == actor.organization_id,
        )
    )
