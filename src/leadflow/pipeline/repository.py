"""Pipeline stage queries (per organisation)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.pipeline_stage import PipelineStage


async def list_stages(session: AsyncSession, org_id: uuid.UUID) -> list[PipelineStage]:
    """Stages in pipeline order."""
    rows = await session.scalars(
        select(PipelineStage)
        .where(PipelineStage.organization_id == org_id)
        .order_by(PipelineStage.position, PipelineStage.key)
    )
    return list(rows)


async def get_stage(
    session: AsyncSession, org_id: uuid.UUID, stage_id: uuid.UUID
) -> PipelineStage | None:
    """A stage by id."""
    return await session.scalar(
        select(PipelineStage).where(
            PipelineStage.organization_id == org_id, PipelineStage.id == stage_id
        )
    )


async def get_stage_by_key(
    session: AsyncSession, org_id: uuid.UUID, key: str
) -> PipelineStage | None:
    """A stage by key."""
    return await session.scalar(
        select(PipelineStage).where(
            PipelineStage.organization_id == org_id, PipelineStage.key == key
        )
    )
