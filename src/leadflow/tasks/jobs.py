"""Tell assignees when their tasks fall due (in-app and email), once per due time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.db.claims import claim
from leadflow.kit.clock import utcnow
from leadflow.models.lead import Lead
from leadflow.models.task import Task
from leadflow.models.user import User
from leadflow.notifications import service as notifications
from leadflow.worker.jobs import JobContext, job

BATCH = 500


async def notify_due(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Notify the assignees of open tasks that fell due; each task and due time only once."""
    ids = list(
        await session.scalars(
            select(Task.id)
            .where(
                Task.status == "open",
                Task.due_at.is_not(None),
                Task.due_at <= now,
                Task.due_notified_at.is_(None),
                Task.assignee_id.is_not(None),
            )
            .limit(BATCH)
        )
    )
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
                "due_local": task.due_at.astimezone(ZoneInfo("Europe/Berlin")).strftime(
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


@job("tasks.due")
async def due_job(ctx: JobContext) -> dict[str, int]:
    """The periodic due-task check (every LEADFLOW_TASK_DUE_SECONDS)."""
    async with ctx.session_factory() as session:
        sent = await notify_due(session, ctx.settings, utcnow())
        await session.commit()
    return {"notified": sent}
