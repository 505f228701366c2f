"""The minute sampler: stores the installation's figures for the health time series."""

from __future__ import annotations

from leadflow.health import service
from leadflow.kit.clock import utcnow
from leadflow.worker.jobs import JobContext, get_queue, job


@job("health.sample")
async def sample(ctx: JobContext) -> dict[str, float]:
    """Sample queue depth, outbox backlog, failed jobs and live workers for this minute
    (every LEADFLOW_HEALTH_SAMPLE_SECONDS, once across all workers)."""
    depth = await service.queue_depth(get_queue())
    async with ctx.session_factory() as session:
        values = await service.take_sample(
            session, settings=ctx.settings, depth=depth, now=utcnow()
        )
        await session.commit()
    return values
