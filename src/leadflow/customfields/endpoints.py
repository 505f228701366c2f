"""/api/v1/custom-fields."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.customfields import service
from leadflow.customfields.schemas import FieldCreate, FieldRead, FieldUpdate
from leadflow.db.session import SessionDep

router = APIRouter(tags=["custom fields"])
Reader = Annotated[Actor, Depends(require_permission("leads:read"))]
Admin = Annotated[Actor, Depends(require_permission("admin:settings"))]


@router.get("", response_model=list[FieldRead])
async def list_fields(session: SessionDep, actor: Reader) -> list[FieldRead]:
    """Custom fields of the organisation."""
    rows = await service.list_fields(session, actor.organization_id)
    return [FieldRead.model_validate(r) for r in rows]


@router.post("", response_model=FieldRead, status_code=status.HTTP_201_CREATED)
async def create_field(session: SessionDep, actor: Admin, body: FieldCreate) -> FieldRead:
    """Define a custom field."""
    return FieldRead.model_validate(await service.create_field(session, actor, body))


@router.patch("/{field_id}", response_model=FieldRead)
async def update_field(
    session: SessionDep, actor: Admin, field_id: uuid.UUID, body: FieldUpdate
) -> FieldRead:
    """Change a custom field."""
    return FieldRead.model_validate(await service.update_field(session, actor, field_id, body))


@router.delete("/{field_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_field(session: SessionDep, actor: Admin, field_id: uuid.UUID) -> Response:
    """Remove a custom field definition."""
    await service.delete_field(session, actor, field_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
