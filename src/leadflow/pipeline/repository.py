"""Pipeline stage queries (per organisation)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.authz.scopes import lead_scope_conditions as scope_conditions
from leadflow.models.lead import Lead
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


# Leads per stage: the pipeline's read of the lead table (counts only; leads are written by
# the leads service).


async def count_by_status(session: AsyncSession, actor: Actor) -> dict[str, int]:
    """Number of live leads in scope per status."""
    rows = await session.execute(
        select(Lead.status, func.count()).where(*scope_conditions(actor)).group_by(Lead.status)
    )
    return {s: int(c) for s, c in rows.all()}


async def count_with_status(session: AsyncSession, org_id: uuid.UUID, status: str) -> int:
    """Live leads of the organisation in `status` (any scope)."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Lead)
            .where(Lead.organization_id == org_id, Lead.status == status, Lead.deleted_at.is_(None))
        )
        or 0
    )
