"""/api/v1/pipeline: stages and summary."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.pipeline import service
from leadflow.pipeline.schemas import (
    PipelineSummary,
    ReorderIn,
    StageCreate,
    StageRead,
    StageUpdate,
)

router = APIRouter(tags=["pipeline"])
Reader = Annotated[Actor, Depends(require_permission("leads:read"))]
Editor = Annotated[Actor, Depends(require_permission("pipeline:write"))]


@router.get("/stages", response_model=list[StageRead])
async def list_stages(session: SessionDep, actor: Reader) -> list[StageRead]:
    """Stages in pipeline order."""
    return [StageRead.model_validate(s) for s in await service.list_stages(session, actor)]


@router.post("/stages", response_model=StageRead, status_code=status.HTTP_201_CREATED)
async def create_stage(session: SessionDep, actor: Editor, body: StageCreate) -> StageRead:
    """Add a stage."""
    return StageRead.model_validate(await service.create_stage(session, actor, body))


@router.post("/stages/reorder", response_model=list[StageRead])
async def reorder_stages(session: SessionDep, actor: Editor, body: ReorderIn) -> list[StageRead]:
    """Set the order of all stages."""
    return [StageRead.model_validate(s) for s in await service.reorder(session, actor, body)]


@router.patch("/stages/{stage_id}", response_model=StageRead)
async def update_stage(
    session: SessionDep, actor: Editor, stage_id: uuid.UUID, body: StageUpdate
) -> StageRead:
    """Rename or re-weight a stage."""
    return StageRead.model_validate(await service.update_stage(session, actor, stage_id, body))


@router.delete("/stages/{stage_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_stage(session: SessionDep, actor: Editor, stage_id: uuid.UUID) -> Response:
    """Delete a stage (409 while leads use it)."""
    await service.delete_stage(session, actor, stage_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/summary", response_model=PipelineSummary)
async def pipeline_summary(session: SessionDep, actor: Reader) -> PipelineSummary:
    """Count and share of leads per stage (in your scope)."""
    return await service.summary(session, actor)
