"""Background jobs of tasks (thin: the service does the work)."""

from __future__ import annotations

from leadflow.kit.clock import utcnow
from leadflow.tasks import service
from leadflow.worker.jobs import JobContext, job


@job("tasks.due")
async def due_job(ctx: JobContext) -> dict[str, int]:
    """The periodic due-task check (every LEADFLOW_TASK_DUE_SECONDS)."""
    async with ctx.session_factory() as session:
        sent = await service.notify_due(session, ctx.settings, utcnow())
        await session.commit()
    return {"notified": sent}
