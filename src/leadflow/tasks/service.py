"""Task rules: scope, assignment to active members, completion."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import (
    delete_recorded,
    record_create,
    record_update,
    snapshot,
)
from leadflow.authz.actor import Actor
from leadflow.calendar.organization import calendar_of
from leadflow.config import Settings
from leadflow.db.claims import claim
from leadflow.exceptions import NotFound, ValidationFailed
from leadflow.kit import events
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.leads import service as leads
from leadflow.models.lead import Lead
from leadflow.models.task import Task
from leadflow.models.user import User
from leadflow.notifications import service as notifications
from leadflow.tasks import repository
from leadflow.tasks.events import TaskCompleted
from leadflow.tasks.repository import TaskFilter
from leadflow.tasks.schemas import TaskCreate, TaskRead, TaskStatus, TaskUpdate
from leadflow.users import repository as users


def to_read(task: Task) -> TaskRead:
    """Response shape, with `overdue` computed from the clock."""
    out = TaskRead.model_validate(task)
    out.overdue = task.status == "open" and task.due_at is not None and task.due_at < utcnow()
    return out


async def get_task(session: AsyncSession, actor: Actor, task_id: uuid.UUID) -> Task:
    """A task in scope, or 404."""
    task = await repository.get(session, actor, task_id)
    if task is None:
        raise NotFound("Task not found")
    return task


async def _check_assignee(session: AsyncSession, actor: Actor, user_id: uuid.UUID) -> None:
    if not await users.is_active_member(session, actor.organization_id, user_id):
        raise ValidationFailed(
            "The assignee must be an active user of this organisation", field="assignee_id"
        )


async def create_task(session: AsyncSession, actor: Actor, data: TaskCreate) -> Task:
    """A new task; a lead must be in the actor's scope."""
    if data.lead_id is not None:
        await leads.get_lead(session, actor, data.lead_id)
    assignee = data.assignee_id or actor.user_id
    if assignee is not None:
        await _check_assignee(session, actor, assignee)
    task = Task(
        organization_id=actor.organization_id,
        lead_id=data.lead_id,
        title=data.title,
        description=data.description,
        due_at=data.due_at,
        priority=data.priority.value,
        status="open",
        assignee_id=assignee,
        created_by=actor.user_id,
    )
    session.add(task)
    await session.flush()
    await record_create(session, actor, task, "task.create", "task")
    return task


def _set_status(task: Task, actor: Actor, status: TaskStatus) -> None:
    task.status = status.value
    if status is TaskStatus.DONE:
        task.completed_at = utcnow()
        task.completed_by = actor.user_id
    else:
        task.completed_at = None
        task.completed_by = None


async def update_task(
    session: AsyncSession, actor: Actor, task_id: uuid.UUID, data: TaskUpdate
) -> Task:
    """Change a task."""
    task = await get_task(session, actor, task_id)
    before = snapshot(task)
    fields: dict[str, Any] = data.model_dump(exclude_unset=True)
    if "title" in fields and fields["title"] is None:
        raise ValidationFailed("title cannot be empty", field="title")
    if fields.get("assignee_id") is not None:
        await _check_assignee(session, actor, fields["assignee_id"])
    if "due_at" in fields and fields["due_at"] != task.due_at:
        task.due_notified_at = None  # a new due time is announced again
    status = fields.pop("status", None)
    for key, value in fields.items():
        setattr(task, key, value.value if key == "priority" and value is not None else value)
    if task.priority is None:
        task.priority = "normal"
    completed = status is not None and status != task.status and status == TaskStatus.DONE
    if status is not None and status != task.status:
        _set_status(task, actor, TaskStatus(status))
    await session.flush()
    await record_update(session, actor, task, before, "task.update", "task")
    if completed:
        await _announce_done(session, task)
    return task


async def _announce_done(session: AsyncSession, task: Task) -> None:
    await events.publish(
        session,
        TaskCompleted(organization_id=task.organization_id, task=task, now=utcnow()),
    )


async def complete_task(session: AsyncSession, actor: Actor, task_id: uuid.UUID) -> Task:
    """Mark a task done (idempotent)."""
    task = await get_task(session, actor, task_id)
    if task.status == "done":
        return task
    before = snapshot(task)
    _set_status(task, actor, TaskStatus.DONE)
    await session.flush()
    await record_update(session, actor, task, before, "task.complete", "task")
    await _announce_done(session, task)
    return task


async def delete_task(session: AsyncSession, actor: Actor, task_id: uuid.UUID) -> None:
    """Delete a task."""
    task = await get_task(session, actor, task_id)
    await delete_recorded(session, actor, task, "task.delete", "task")


async def list_tasks(
    session: AsyncSession, actor: Actor, f: TaskFilter, page: PageParams
) -> tuple[list[Task], int]:
    """Tasks in the actor's scope."""
    return await repository.list_tasks(session, actor, f, page)


BATCH = 500


async def notify_due(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Notify the assignees of open tasks that fell due; each task and due time only once."""
    ids = await repository.due_unnotified_ids(session, now, BATCH)
    sent = 0
    for task_id in ids:
        if not await claim(
            session, Task, Task.id == task_id, Task.due_notified_at.is_(None), due_notified_at=now
        ):
            continue  # another worker took it
        task = await session.get(Task, task_id, populate_existing=True)
        assert task is not None and task.due_at is not None and task.assignee_id is not None
        user = await session.get(User, task.assignee_id)
        if user is None or user.status != "active":
            continue
        lead = await session.get(Lead, task.lead_id) if task.lead_id else None
        calendar = await calendar_of(session, task.organization_id)  # due time as the team reads it
        key = f"task-due:{task.id}:{task.due_at.isoformat()}"
        await notifications.notify(
            session,
            organization_id=task.organization_id,
            user_id=user.id,
            kind="task_due",
            title=f"Task due: {task.title}",
            lead_id=task.lead_id,
            data={"task_id": str(task.id), "due_at": task.due_at.isoformat()},
            delivery_key=key,
        )
        await notifications.queue_email(
            session,
            organization_id=task.organization_id,
            to=user.email,
            template="task_due",
            language=user.language,
            context={
                "recipient_name": user.full_name,
                "task_title": task.title,
                "due_local": task.due_at.astimezone(ZoneInfo(calendar.timezone)).strftime(
                    "%d.%m.%Y %H:%M"
                ),
                "lead_name": lead.full_name if lead else None,
                "task_url": f"{settings.public_url.rstrip('/')}/tasks/{task.id}",
            },
            delivery_key=key,
            max_attempts=settings.outbox_max_attempts,
        )
        sent += 1
    return sent
