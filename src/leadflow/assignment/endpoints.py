"""/api/v1/assignment/rules."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from leadflow.assignment import service
from leadflow.assignment.schemas import RuleCreate, RuleRead, RuleUpdate
from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep

router = APIRouter(tags=["assignment"])
Reader = Annotated[Actor, Depends(require_permission("leads:read"))]
Admin = Annotated[Actor, Depends(require_permission("admin:settings"))]


@router.get("", response_model=list[RuleRead])
async def list_rules(session: SessionDep, actor: Reader) -> list[RuleRead]:
    """Rules in evaluation order."""
    return [
        RuleRead.model_validate(r) for r in await service.list_rules(session, actor.organization_id)
    ]


@router.post("", response_model=RuleRead, status_code=status.HTTP_201_CREATED)
async def create_rule(session: SessionDep, actor: Admin, body: RuleCreate) -> RuleRead:
    """Add a rule."""
    return RuleRead.model_validate(await service.create_rule(session, actor, body))


@router.patch("/{rule_id}", response_model=RuleRead)
async def update_rule(
    session: SessionDep, actor: Admin, rule_id: uuid.UUID, body: RuleUpdate
) -> RuleRead:
    """Change a rule."""
    return RuleRead.model_validate(await service.update_rule(session, actor, rule_id, body))


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(session: SessionDep, actor: Admin, rule_id: uuid.UUID) -> Response:
    """Remove a rule."""
    await service.delete_rule(session, actor, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
