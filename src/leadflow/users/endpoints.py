"""/api/v1/users (alias /api/users); the admin console's /api/v1/admin/users is in accounts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.users import service
from leadflow.users.repository import UserFilter
from leadflow.users.schemas import UserCreate, UserRead, UserStatus, UserUpdate

router = APIRouter(tags=["users"])
Reader = Annotated[Actor, Depends(require_permission("users:read"))]
Admin = Annotated[Actor, Depends(require_permission("admin:users"))]


@router.get("", response_model=Page[UserRead])
async def list_users(
    session: SessionDep,
    actor: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    search: Annotated[str | None, Query(max_length=200)] = None,
    role: str | None = None,
    status: UserStatus | None = None,
    team_id: uuid.UUID | None = None,
) -> Page[UserRead]:
    """Members of the organisation, by name."""
    f = UserFilter(search, role, status.value if status else None, team_id)
    rows, total = await service.list_users(session, actor, f, page)
    return Page(
        items=[service.to_read(u) for u in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("", response_model=UserRead, status_code=status.HTTP_201_CREATED)
async def create_user(session: SessionDep, actor: Admin, body: UserCreate) -> UserRead:
    """Add a member to the organisation."""
    return service.to_read(await service.create_user(session, actor, body))


@router.get("/{user_id}", response_model=UserRead)
async def get_user(session: SessionDep, actor: Reader, user_id: uuid.UUID) -> UserRead:
    """One member."""
    return service.to_read(await service.get_user(session, actor, user_id))


@router.patch("/{user_id}", response_model=UserRead)
async def update_user(
    session: SessionDep, actor: Admin, user_id: uuid.UUID, body: UserUpdate
) -> UserRead:
    """Change name, role, status or team."""
    return service.to_read(await service.update_user(session, actor, user_id, body))


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(session: SessionDep, actor: Admin, user_id: uuid.UUID) -> Response:
    """Deactivate a member; their tokens stop working at once."""
    await service.deactivate_user(session, actor, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
