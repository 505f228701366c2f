"""Queries of the integrations (always within one organisation)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.integration import Integration


async def for_org(session: AsyncSession, organization_id: uuid.UUID) -> list[Integration]:
    """The organisation's connected integrations."""
    rows = await session.scalars(
        select(Integration).where(Integration.organization_id == organization_id)
    )
    return list(rows)


async def get(
    session: AsyncSession, organization_id: uuid.UUID, type_: str, *, for_update: bool = False
) -> Integration | None:
    """The organisation's integration of `type_`, if connected."""
    stmt = select(Integration).where(
        Integration.organization_id == organization_id, Integration.type == type_
    )
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)
