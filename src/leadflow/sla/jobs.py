"""Background job of SLA clocks: the periodic reminder/breach check."""

from __future__ import annotations

import logging

from leadflow.kit.clock import utcnow
from leadflow.sla import service
from leadflow.worker.jobs import JobContext, job

log = logging.getLogger("leadflow.sla")


@job("sla.check")
async def check_job(ctx: JobContext) -> dict[str, int]:
    """The periodic SLA check (every LEADFLOW_SLA_CHECK_SECONDS, once across all workers)."""
    totals = {"reminded": 0, "breached": 0}
    while True:
        async with ctx.session_factory() as session:
            result = await service.check(session, ctx.settings, utcnow())
            await session.commit()
        totals = {k: totals[k] + result[k] for k in totals}
        if result["reminded"] < service.BATCH and result["breached"] < service.BATCH:
            break
    if totals["reminded"] or totals["breached"]:
        log.info("sla check", extra=totals)
    return totals
