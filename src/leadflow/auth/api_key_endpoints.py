"""/api/v1/admin/api-keys."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from leadflow.auth import api_keys
from leadflow.auth.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from leadflow.auth.dependencies import current_person, require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep

router = APIRouter(tags=["api keys"])
KeyAdmin = Annotated[Actor, Depends(require_permission("admin:api_keys"))]


async def _person_key_admin(actor: KeyAdmin) -> Actor:
    # A key must not mint keys: they would carry its creator's name and outlive its revocation.
    return await current_person(actor)


PersonKeyAdmin = Annotated[Actor, Depends(_person_key_admin)]


@router.post("", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
async def create_api_key(
    session: SessionDep, actor: PersonKeyAdmin, body: ApiKeyCreate
) -> ApiKeyCreated:
    """Issue a key. The full key is in this response only."""
    return await api_keys.create_key(session, actor, body)


@router.get("", response_model=list[ApiKeyRead])
async def list_api_keys(session: SessionDep, actor: KeyAdmin) -> list[ApiKeyRead]:
    """Keys of the organisation (prefix and last use only)."""
    return [ApiKeyRead.model_validate(k) for k in await api_keys.list_keys(session, actor)]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(session: SessionDep, actor: KeyAdmin, key_id: uuid.UUID) -> Response:
    """Revoke a key at once."""
    await api_keys.revoke_key(session, actor, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
