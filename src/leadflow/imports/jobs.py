"""Background jobs of imports: run a stored batch, resume stalled ones, delete old files."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from leadflow.db.engine import transactions_that
from leadflow.imports import repository
from leadflow.imports.batches import claim, file_chunks, lease_duration, run_claimed, spool_file
from leadflow.kit.clock import utcnow
from leadflow.worker.jobs import JobContext, job

log = logging.getLogger("leadflow.imports")


@job("imports.run")
async def run_job(ctx: JobContext, batch_id: str) -> str:
    """Process (or resume) a background import; a lease keeps two workers off one batch."""
    bid = uuid.UUID(batch_id)
    token = await claim(ctx, bid)
    if token is None:
        return "skipped"
    # Copying the stored file only reads: no SQLite write lock while it runs.
    with transactions_that(write=False):
        async with ctx.session_factory() as session:
            path = await spool_file(session, bid)
    try:
        return await run_claimed(
            ctx, bid, token, file_chunks(path), open_file=lambda: path.open("rb"), path=path
        )
    finally:
        path.unlink(missing_ok=True)


@job("imports.resume")
async def resume_job(ctx: JobContext) -> int:
    """Restart background imports whose worker died (lease expired)."""
    cutoff = utcnow() - lease_duration(ctx.settings)
    async with ctx.session_factory() as session:
        ids = await repository.stale_batch_ids(session, cutoff)
    for bid in ids:
        try:
            await run_job(ctx, str(bid))
        except Exception:
            # One broken batch must not keep the others from resuming.
            log.exception("import %s: resume failed", bid)
    return len(ids)


CLEANUP_BATCHES = 50


@job("imports.cleanup_files")
async def cleanup_files_job(ctx: JobContext) -> int:
    """Delete the stored files of batches finished more than the retention ago; how many.

    Files stay while a batch is pending or running (resume needs them) and for
    `LEADFLOW_IMPORT_FILE_RETENTION_HOURS` after it finished; errors.csv reads only the
    stored row errors, so it keeps working afterwards. A transaction per few batches keeps
    each delete short.
    """
    cutoff = utcnow() - timedelta(hours=ctx.settings.import_file_retention_hours)
    cleaned = 0
    while True:
        async with ctx.session_factory() as session:
            ids = await repository.expired_file_batch_ids(session, cutoff, CLEANUP_BATCHES)
            if ids:
                await repository.delete_file_chunks(session, ids)
                await session.commit()
        cleaned += len(ids)
        if len(ids) < CLEANUP_BATCHES:
            return cleaned
