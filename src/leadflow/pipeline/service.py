"""Pipeline stages: listing, editing, reordering, and the summary of leads per stage."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record, record_create, record_update, snapshot
from leadflow.authz.actor import Actor
from leadflow.exceptions import NotFound, ValidationFailed
from leadflow.models.pipeline_stage import PipelineStage
from leadflow.pipeline import repository
from leadflow.pipeline.errors import LastStage, NoStages, StageExists, StageInUse, UnknownStatus
from leadflow.pipeline.schemas import (
    PipelineSummary,
    ReorderIn,
    StageCreate,
    StageSummary,
    StageUpdate,
)


async def list_stages(session: AsyncSession, actor: Actor) -> list[PipelineStage]:
    """The organisation's stages in order."""
    return await repository.list_stages(session, actor.organization_id)


async def stage_for(session: AsyncSession, org_id: uuid.UUID, key: str) -> PipelineStage:
    """The stage with `key`, or 422 naming `status`."""
    stage = await repository.get_stage_by_key(session, org_id, key)
    if stage is None:
        keys = [s.key for s in await repository.list_stages(session, org_id)]
        raise UnknownStatus(
            f"Unknown status '{key}'; stages are: {', '.join(keys)}", field="status"
        )
    return stage


async def first_stage(session: AsyncSession, org_id: uuid.UUID) -> PipelineStage:
    """The first stage (where new leads start)."""
    stages = await repository.list_stages(session, org_id)
    if not stages:
        raise NoStages("The organisation has no pipeline stages")
    return stages[0]


async def _get(session: AsyncSession, actor: Actor, stage_id: uuid.UUID) -> PipelineStage:
    stage = await repository.get_stage(session, actor.organization_id, stage_id)
    if stage is None:
        raise NotFound("Stage not found")
    return stage


async def create_stage(session: AsyncSession, actor: Actor, data: StageCreate) -> PipelineStage:
    """Add a stage; keys are unique per organisation."""
    if await repository.get_stage_by_key(session, actor.organization_id, data.key):
        raise StageExists(f"A stage with key '{data.key}' exists")
    stages = await repository.list_stages(session, actor.organization_id)
    position = len(stages) if data.position is None else min(data.position, len(stages))
    stage = PipelineStage(
        organization_id=actor.organization_id,
        key=data.key,
        name=data.name,
        category=data.category.value,
        probability=data.probability,
        position=position,
    )
    stages.insert(position, stage)
    session.add(stage)
    for i, s in enumerate(stages):
        s.position = i
    await session.flush()
    await record_create(session, actor, stage, "stage.create", "pipeline_stage")
    return stage


async def update_stage(
    session: AsyncSession, actor: Actor, stage_id: uuid.UUID, data: StageUpdate
) -> PipelineStage:
    """Rename, recategorise or re-weight a stage."""
    stage = await _get(session, actor, stage_id)
    before = snapshot(stage)
    for key, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(stage, key, str(value) if key == "category" else value)
    await session.flush()
    await record_update(session, actor, stage, before, "stage.update", "pipeline_stage")
    return stage


async def reorder(session: AsyncSession, actor: Actor, data: ReorderIn) -> list[PipelineStage]:
    """Put the stages in the given order (every stage exactly once)."""
    stages = await repository.list_stages(session, actor.organization_id)
    by_id = {s.id: s for s in stages}
    if sorted(map(str, data.ids)) != sorted(map(str, by_id)):
        raise ValidationFailed(
            "ids must list every stage of the pipeline exactly once", field="ids"
        )
    before = [s.key for s in stages]
    for i, sid in enumerate(data.ids):
        by_id[sid].position = i
    await session.flush()
    ordered = sorted(stages, key=lambda s: s.position)
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="stage.reorder",
        resource_type="pipeline",
        resource_id=None,
        before={"order": before},
        after={"order": [s.key for s in ordered]},
    )
    return ordered


async def delete_stage(session: AsyncSession, actor: Actor, stage_id: uuid.UUID) -> None:
    """Delete a stage no lead uses."""
    stage = await _get(session, actor, stage_id)
    used = await repository.count_with_status(session, actor.organization_id, stage.key)
    if used:
        raise StageInUse(f"{used} leads are in this stage; move them first", lead_count=used)
    stages = await repository.list_stages(session, actor.organization_id)
    if len(stages) == 1:
        raise LastStage("The pipeline needs at least one stage")
    before = snapshot(stage)
    await session.delete(stage)
    for i, s in enumerate(x for x in stages if x.id != stage.id):
        s.position = i
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="stage.delete",
        resource_type="pipeline_stage",
        resource_id=stage_id,
        before=before,
    )


async def summary(session: AsyncSession, actor: Actor) -> PipelineSummary:
    """Leads per stage within the actor's scope."""
    counts = await repository.count_by_status(session, actor)
    total = sum(counts.values())
    stages = await repository.list_stages(session, actor.organization_id)
    return PipelineSummary(
        total=total,
        stages=[
            StageSummary(
                key=s.key,
                name=s.name,
                category=s.category,
                count=counts.get(s.key, 0),
                share=round(counts.get(s.key, 0) / total, 4) if total else 0.0,
            )
            for s in stages
        ],
    )
