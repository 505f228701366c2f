"""Background jobs of reports: run due schedules, drop expired files; the attachment loader."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from leadflow.kit.clock import utcnow
from leadflow.notifications.attachments import register_loader
from leadflow.reports import service
from leadflow.worker.jobs import JobContext, job

log = logging.getLogger("leadflow.reports")

DUE_BATCH = 100
CLEANUP_BATCH = 50

# Scheduled emails attach their run's stored file; delivery loads it through this.
register_loader(service.ATTACHMENT_SOURCE, service.file_bytes)


async def run_schedule(ctx: JobContext, schedule_id: uuid.UUID, due_at: datetime) -> str:
    """Claim a schedule's due time and run it; `skipped` when another worker has it.

    The claim commits first (exactly one worker wins it, see `db.claims`); the run then makes
    the file in a read-only transaction and stores it and queues the emails in a short write
    transaction (on SQLite no write lock is held while the file is made). A run that fails
    is recorded as failed with its error (the schedule stays on its next time).
    """
    now = utcnow()
    async with ctx.session_factory() as session:
        run_id = await service.claim_schedule(session, schedule_id, due_at, now)
        await session.commit()
    if run_id is None:
        return "skipped"
    return await _execute(ctx, run_id, now)


async def resume_run(ctx: JobContext, run_id: uuid.UUID) -> str:
    """Run again a scheduled run whose worker died after claiming it (the claim is committed
    before the run, so the schedule has already moved on: without this the period's report
    would never be sent). Its emails keep their delivery keys, so each goes out once."""
    now = utcnow()
    async with ctx.session_factory() as session:
        won = await service.reclaim_run(session, run_id, now, _lease(ctx))
        await session.commit()
    if not won:
        return "skipped"
    log.warning(
        "scheduled report run again after its worker stopped", extra={"run_id": str(run_id)}
    )
    return await _execute(ctx, run_id, now)


def _count(counts: dict[str, int], outcome: str) -> None:
    counts[outcome if outcome in ("skipped", "failed") else "ran"] += 1


def _lease(ctx: JobContext) -> timedelta:
    return timedelta(seconds=ctx.settings.report_run_lease_seconds)


async def _execute(ctx: JobContext, run_id: uuid.UUID, now: datetime) -> str:
    try:
        async with ctx.session_factory() as session:
            status = await service.execute_scheduled(session, ctx.settings, run_id, now)
            await session.commit()
        return status
    except Exception as exc:
        log.exception("scheduled report failed", extra={"run_id": str(run_id)})
        async with ctx.session_factory() as session:
            await service.fail_run(session, run_id, exc)
            await session.commit()
        return "failed"


@job("reports.due")
async def due_job(ctx: JobContext) -> dict[str, int]:
    """The periodic schedule check (every LEADFLOW_REPORT_SCHEDULE_SECONDS)."""
    async with ctx.session_factory() as session:
        due = await service.due_schedules(session, utcnow(), DUE_BATCH)
    counts = {"ran": 0, "failed": 0, "skipped": 0}
    for schedule_id, due_at in due:
        _count(counts, await run_schedule(ctx, schedule_id, due_at))
    async with ctx.session_factory() as session:
        stale = await service.stale_scheduled_runs(session, utcnow(), _lease(ctx), DUE_BATCH)
    for run_id in stale:
        _count(counts, await resume_run(ctx, run_id))
    if counts["ran"] or counts["failed"]:
        log.info("scheduled reports", extra=counts)
    return counts


@job("reports.cleanup_files")
async def cleanup_files_job(ctx: JobContext) -> dict[str, int]:
    """Delete stored report files past LEADFLOW_REPORT_FILE_RETENTION_HOURS (the runs stay in
    the history without a link), and fail runs whose worker died (a scheduled one once it was
    run again and interrupted again)."""
    now = utcnow()
    dropped = 0
    while True:
        async with ctx.session_factory() as session:
            n = await service.cleanup_files(session, now, CLEANUP_BATCH)
            await session.commit()
        dropped += n
        if n < CLEANUP_BATCH:
            break
    async with ctx.session_factory() as session:
        stale = await service.fail_stale_runs(session, now, _lease(ctx))
        await session.commit()
    return {"files": dropped, "interrupted": stale}
