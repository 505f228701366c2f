"""/api/v1/tasks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AwareDatetime

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.exceptions import ValidationFailed
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.tasks import service
from leadflow.tasks.repository import TaskFilter
from leadflow.tasks.schemas import TaskCreate, TaskRead, TaskStatus, TaskUpdate

router = APIRouter(tags=["tasks"])
Reader = Annotated[Actor, Depends(require_permission("tasks:read"))]
Writer = Annotated[Actor, Depends(require_permission("tasks:write"))]


def _assigned(actor: Actor, value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    if value == "me":
        return actor.user_id
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed(
            "assigned_to must be a user id or 'me'",
            errors=[{"loc": ["query", "assigned_to"], "msg": "invalid"}],
        ) from None


@router.get("", response_model=Page[TaskRead])
async def list_tasks(
    session: SessionDep,
    actor: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    lead_id: uuid.UUID | None = None,
    assigned_to: Annotated[str | None, Query(description="User id or `me`")] = None,
    status_: Annotated[TaskStatus | None, Query(alias="status")] = None,
    due_before: AwareDatetime | None = None,  # naive is a 422: no defined zone
    overdue: bool = False,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[TaskRead]:
    """Tasks in your scope: open ones by due time first."""
    f = TaskFilter(
        lead_id=lead_id,
        assigned_to=_assigned(actor, assigned_to),
        status=status_.value if status_ else None,
        due_before=due_before,
        overdue_at=utcnow() if overdue else None,
        q=q,
    )
    rows, total = await service.list_tasks(session, actor, f, page)
    return Page(
        items=[service.to_read(t) for t in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("", response_model=TaskRead, status_code=status.HTTP_201_CREATED)
async def create_task(session: SessionDep, actor: Writer, body: TaskCreate) -> TaskRead:
    """Create a task (yours unless `assignee_id` is given)."""
    return service.to_read(await service.create_task(session, actor, body))


@router.get("/{task_id}", response_model=TaskRead)
async def get_task(session: SessionDep, actor: Reader, task_id: uuid.UUID) -> TaskRead:
    """One task."""
    return service.to_read(await service.get_task(session, actor, task_id))


@router.patch("/{task_id}", response_model=TaskRead)
async def update_task(
    session: SessionDep, actor: Writer, task_id: uuid.UUID, body: TaskUpdate
) -> TaskRead:
    """Change a task."""
    return service.to_read(await service.update_task(session, actor, task_id, body))


@router.post("/{task_id}/complete", response_model=TaskRead)
async def complete_task(session: SessionDep, actor: Writer, task_id: uuid.UUID) -> TaskRead:
    """Mark a task done."""
    return service.to_read(await service.complete_task(session, actor, task_id))


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(session: SessionDep, actor: Writer, task_id: uuid.UUID) -> Response:
    """Delete a task."""
    await service.delete_task(session, actor, task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
