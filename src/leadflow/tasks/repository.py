"""Task queries with organisation and row scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.authz.scopes import task_scope_conditions as scope_conditions
from leadflow.kit.pagination import PageParams
from leadflow.models.task import Task


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Filters of the task list."""

    lead_id: uuid.UUID | None = None
    assigned_to: uuid.UUID | None = None
    status: str | None = None
    due_before: datetime | None = None
    overdue_at: datetime | None = None
    q: str | None = None


async def get(session: AsyncSession, actor: Actor, task_id: uuid.UUID) -> Task | None:
    """A task in scope."""
    return await session.scalar(select(Task).where(Task.id == task_id, *scope_conditions(actor)))


async def list_tasks(
    session: AsyncSession, actor: Actor, f: TaskFilter, page: PageParams
) -> tuple[list[Task], int]:
    """Tasks in scope: open first by due time, then newest."""
    conds = scope_conditions(actor)
    if f.lead_id:
        conds.append(Task.lead_id == f.lead_id)
    if f.assigned_to:
        conds.append(Task.assignee_id == f.assigned_to)
    if f.status:
        conds.append(Task.status == f.status)
    if f.due_before:
        conds.append(Task.due_at < f.due_before)
    if f.overdue_at:
        conds.extend([Task.status == "open", Task.due_at < f.overdue_at])
    if f.q:
        like = f"%{f.q.lower()}%"
        conds.append(
            or_(
                func.lower(Task.title).like(like),
                func.lower(func.coalesce(Task.description, "")).like(like),
            )
        )
    total = await session.scalar(select(func.count()).select_from(Task).where(*conds))
    rows = await session.scalars(
        select(Task)
        .where(*conds)
        .order_by(Task.due_at.asc().nulls_last(), Task.created_at.desc(), Task.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows), int(total or 0)


async def open_counts(session: AsyncSession, lead_id: uuid.UUID, now: datetime) -> tuple[int, int]:
    """Open and overdue task counts of a lead."""
    open_n = await session.scalar(
        select(func.count()).select_from(Task).where(Task.lead_id == lead_id, Task.status == "open")
    )
    overdue_n = await session.scalar(
        select(func.count())
        .select_from(Task)
        .where(Task.lead_id == lead_id, Task.status == "open", Task.due_at < now)
    )
    return int(open_n or 0), int(overdue_n or 0)


async def due_unnotified_ids(session: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    """Open, assigned tasks that fell due and whose assignee was not told yet."""
    return list(
        await session.scalars(
            select(Task.id)
            .where(
                Task.status == "open",
                Task.due_at.is_not(None),
                Task.due_at <= now,
                Task.due_notified_at.is_(None),
                Task.assignee_id.is_not(None),
            )
            .limit(limit)
        )
    )
