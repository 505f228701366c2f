"""The life of an import batch: started, run (in the request or by a worker), read back.

A small file runs inside the request (`run_sync`); a large one is stored in pieces and
handed to the worker (`start_async`), which claims the batch under a lease and runs it
with fenced checkpoints (`claim`, `run_claimed`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record
from leadflow.authz.actor import Actor
from leadflow.authz.grants import narrower_scope
from leadflow.authz.permissions import RowScope
from leadflow.config import Settings
from leadflow.db.dialect import is_postgres
from leadflow.exceptions import NotFound, ValidationFailed
from leadflow.imports import parsing, repository
from leadflow.imports.events import ImportCompleted
from leadflow.imports.options import ImportOptions
from leadflow.imports.parsing import FileProblem
from leadflow.imports.pipeline import MAX_REPORTED_ERRORS, ImportFenced, Report, process
from leadflow.imports.rows import Source, load_context, open_rows, resolve_dates
from leadflow.kit import events
from leadflow.kit.clock import utcnow
from leadflow.kit.normalize import neutralize_formula
from leadflow.models.import_batch import ImportBatch, ImportFileChunk, ImportRowError
from leadflow.models.user import User
from leadflow.users import repository as users
from leadflow.worker.jobs import JobContext, enqueue_job

log = logging.getLogger("leadflow.imports")
FILE_CHUNK_BYTES = 1 << 20


async def create_batch(
    session: AsyncSession, actor: Actor, source: Source, options: ImportOptions, *, is_async: bool
) -> ImportBatch:
    """A batch row (and, for background runs, the stored file)."""
    batch = ImportBatch(
        organization_id=actor.organization_id,
        created_by=actor.user_id,
        status="pending" if is_async else "running",
        filename=source.filename,
        file_format=source.fmt,
        options=options.to_json(),
        is_async=is_async,
        row_scope=actor.row_scope.value,
        team_id=actor.team_id,
        started_at=utcnow(),
    )
    session.add(batch)
    await session.flush()
    if is_async:
        size = 0
        buf = b""
        seq = 0
        for piece in source.chunks():
            buf += piece
            while len(buf) >= FILE_CHUNK_BYTES:
                session.add(
                    ImportFileChunk(batch_id=batch.id, seq=seq, data=buf[:FILE_CHUNK_BYTES])
                )
                buf = buf[FILE_CHUNK_BYTES:]
                seq += 1
            size += len(piece)
        if buf:
            session.add(ImportFileChunk(batch_id=batch.id, seq=seq, data=buf))
        batch.size_bytes = size
        await session.flush()
        enqueue_job(session, "imports.run", str(batch.id))
    return batch


async def run_sync(
    session: AsyncSession, actor: Actor, settings: Settings, source: Source, options: ImportOptions
) -> tuple[ImportBatch | None, Report]:
    """Import a small file inside the request's transaction."""
    await _check_assignee(session, actor, options)
    batch = (
        None
        if options.dry_run
        else await create_batch(session, actor, source, options, is_async=False)
    )
    report = await process(
        session,
        actor=actor,
        settings=settings,
        source=source,
        options=options,
        batch=batch,
    )
    if batch is not None:
        batch.status = "completed"
        batch.finished_at = utcnow()
        await _announce(session, batch)
        await record(
            session,
            actor=actor,
            organization_id=actor.organization_id,
            action="import.completed",
            resource_type="import",
            resource_id=batch.id,
            after=_summary(batch),
        )
    return batch, report


async def start_async(
    session: AsyncSession, actor: Actor, source: Source, options: ImportOptions
) -> ImportBatch:
    """Store a large file and hand it to the worker."""
    await _check_assignee(session, actor, options)
    batch = await create_batch(session, actor, source, options, is_async=True)
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="import.started",
        resource_type="import",
        resource_id=batch.id,
        after={"filename": batch.filename, "size_bytes": batch.size_bytes},
    )
    return batch


async def _check_assignee(session: AsyncSession, actor: Actor, options: ImportOptions) -> None:
    if options.assignee_id is None:
        return
    if not await users.is_active_member(session, actor.organization_id, options.assignee_id):
        raise ValidationFailed(
            "assignee_id must be an active user of this organisation", field="assignee_id"
        )
    if options.assignee_id != actor.user_id:
        # As on a lead's own create or update: giving leads to someone else is leads:assign.
        actor.require("leads:assign")


async def _announce(session: AsyncSession, batch: ImportBatch) -> None:
    """Publish `import.completed` (webhooks subscribe) with the finished batch's counts."""
    await events.publish(
        session,
        ImportCompleted(
            organization_id=batch.organization_id,
            batch_id=batch.id,
            filename=batch.filename,
            summary=_summary(batch),
            now=batch.finished_at or utcnow(),
        ),
    )


def _summary(batch: ImportBatch) -> dict[str, Any]:
    return {
        k: getattr(batch, k)
        for k in (
            "status",
            "total_rows",
            "imported_count",
            "updated_count",
            "skipped_count",
            "error_count",
            "needs_action_count",
            "without_last_contact_count",
        )
    }


async def spool_file(session: AsyncSession, batch_id: uuid.UUID) -> Path:
    """Copy the stored file to a local temporary file, one piece at a time (flat memory)."""
    fd, name = tempfile.mkstemp(prefix="leadflow-import-")
    os.close(fd)
    path = Path(name)
    seqs = await repository.file_chunk_seqs(session, batch_id)
    with path.open("wb") as fh:  # noqa: ASYNC230 (local temp file, 1 MiB writes)
        for seq in seqs:
            piece = await repository.file_chunk_data(session, batch_id, seq)
            fh.write(piece or b"")
            session.expunge_all()
    return path


def file_chunks(path: Path) -> Callable[[], Iterator[bytes]]:
    """Re-readable chunk iterator over a local file."""

    def read() -> Iterator[bytes]:
        with path.open("rb") as fh:
            while piece := fh.read(FILE_CHUNK_BYTES):
                yield piece

    return read


def lease_duration(settings: Settings) -> timedelta:
    """How long a claim holds a batch before another worker may take it over."""
    return timedelta(seconds=settings.import_lease_seconds)


def batch_actor(batch: ImportBatch, importer: User | None = None) -> Actor:
    """The importer as a background run acts: their organisation, user and row scope.

    With the importer's current row, the narrower of the recorded scope and today's role
    applies and their current team: a demotion during a long import takes effect at once.
    """
    # Batches from before scopes were recorded keep the organisation-wide behaviour.
    scope = RowScope(batch.row_scope or RowScope.ORG.value)
    team_id = batch.team_id
    permissions = {"imports:write"}
    if importer is not None:
        scope = narrower_scope(scope, RowScope(importer.role.row_scope))
        team_id = importer.team_id
        if "leads:assign" in importer.role.permissions:
            # The owner column assigns to others only while the importer may.
            permissions.add("leads:assign")
    return Actor(
        organization_id=batch.organization_id,
        user_id=batch.created_by,
        role="import",
        permissions=frozenset(permissions),
        row_scope=scope,
        team_id=team_id,
    )


async def _importer(session: AsyncSession, batch: ImportBatch) -> User | None:
    """The batch's creator as they are now; FileProblem when they may no longer import."""
    if batch.created_by is None:
        return None
    user = await users.get_with_role(session, batch.created_by)
    if user is None or user.status != "active" or "imports:write" not in user.role.permissions:
        raise FileProblem("The importer is no longer active or may no longer import")
    return user


async def claim(ctx: JobContext, batch_id: uuid.UUID) -> str | None:
    """Claim a pending batch, or one whose lease expired; the new claim token, or None."""
    async with ctx.session_factory() as session:
        token = await repository.claim_batch(
            session, batch_id, utcnow(), lease_duration(ctx.settings)
        )
        await session.commit()
    return token


async def run_claimed(
    ctx: JobContext,
    bid: uuid.UUID,
    token: str,
    chunks: Callable[[], Iterator[bytes]],
    *,
    open_file: Callable[[], BinaryIO] | None = None,
    path: Path | None = None,
) -> str:
    """Run a batch this worker claimed with `token`; "fenced" if another claim took over.

    Each chunk commits with its fenced checkpoint; a fenced chunk is rolled back and the
    run stops at once, so no row is written by two workers.
    """
    async with ctx.session_factory() as session:
        batch = await session.get(ImportBatch, bid)
        assert batch is not None
        source = Source(
            fmt=batch.file_format,  # type: ignore[arg-type]
            chunks=chunks,
            filename=batch.filename,
            open_file=open_file,
            path=path,
        )
        options = ImportOptions.from_json(batch.options)
        try:
            importer = await _importer(session, batch)
            await process(
                session,
                actor=batch_actor(batch, importer),
                settings=ctx.settings,
                source=source,
                options=options,
                batch=batch,
                claim_token=token,
                commit_each_chunk=True,
                lookups=ctx.session_factory,
            )
        except ImportFenced:
            await session.rollback()
            log.warning("import %s: claimed by another worker; this run stopped", bid)
            return "fenced"
        except FileProblem as exc:
            # Found mid-file (the database refused too many rows of a chunk): the chunk's
            # writes so far are not kept; the chunks committed before stay.
            await session.rollback()
            batch = await session.get(ImportBatch, bid)
            assert batch is not None
            batch.status, batch.failure = "failed", str(exc)
        except (DBAPIError, OSError):
            raise  # the database or the disk went away: the batch stays for resume
        except Exception as exc:
            # A fault in the file's content that slipped past row validation would fail the
            # same way on every resume: stop here instead of retrying forever.
            log.exception("import %s failed", bid)
            await session.rollback()
            batch = await session.get(ImportBatch, bid)
            assert batch is not None
            batch.status, batch.failure = "failed", f"unexpected error: {type(exc).__name__}"
        else:
            batch.status = "completed"
        batch.finished_at = utcnow()
        if batch.status == "completed":
            await _announce(session, batch)
        await record(
            session,
            actor=None,
            organization_id=batch.organization_id,
            action=f"import.{batch.status}",
            resource_type="import",
            resource_id=batch.id,
            after=_summary(batch),
        )
        await session.flush()
        # The final write is fenced too: a run that lost its claim after its last chunk
        # must not mark the batch finished under the new claimer.
        if not await repository.checkpoint(session, bid, token, {"updated_at": utcnow()}):
            await session.rollback()
            log.warning("import %s: claimed by another worker; this run stopped", bid)
            return "fenced"
        await session.commit()
        status, imported = batch.status, batch.imported_count
        written = imported + batch.updated_count
        if written and is_postgres(session):
            try:
                await repository.flush_search_indexes(session)
                if imported > 10_000:
                    # Autovacuum lags behind a big load; give the planner fresh statistics now.
                    await repository.analyze_lead_table(session)
                await session.commit()
            except DBAPIError:
                # Maintenance only (the batch is already committed): a database role that does
                # not own the indexes may not flush them; autovacuum will.
                await session.rollback()
                log.warning("could not flush the lead search indexes after import %s", bid)
        return status


async def list_batches(
    session: AsyncSession, actor: Actor, limit: int, offset: int
) -> tuple[list[ImportBatch], int]:
    """Batches in the actor's scope (own / team / org by who started them), newest first."""
    return await repository.list_batches(session, actor, limit, offset)


async def get_batch(session: AsyncSession, actor: Actor, batch_id: uuid.UUID) -> ImportBatch:
    """A batch in the actor's scope, or 404."""
    row = await repository.batch_in_scope(session, actor, batch_id)
    if row is None:
        raise NotFound("Import not found")
    return row


async def batch_errors(
    session: AsyncSession, batch_id: uuid.UUID, limit: int = MAX_REPORTED_ERRORS
) -> list[ImportRowError]:
    """The first failed rows of a batch."""
    return await repository.row_errors(session, batch_id, limit)


async def stored_error_counts(
    session: AsyncSession, batch_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many failed rows each batch stored (at most `import_max_stored_errors`)."""
    return await repository.stored_error_counts(session, batch_ids)


ERRORS_CSV_BATCH = 1000


async def errors_csv(
    session: AsyncSession,
    actor: Actor,
    batch_id: uuid.UUID,
    session_factory: Callable[[], AsyncSession],
) -> AsyncIterator[bytes]:
    """errors.csv of a batch: the stored failed rows as uploaded plus an `error` column.

    The batch is checked now (404 before the response starts); the rows are then read in
    batches through a session of their own while the response streams. Header and cells are
    formula-safe. Only the database is read: the stored file may already be deleted.
    """
    batch = await get_batch(session, actor, batch_id)
    return _errors_csv_stream(session_factory, batch.id, list(batch.headers or []))


async def _errors_csv_stream(
    session_factory: Callable[[], AsyncSession], batch_id: uuid.UUID, headers: list[str]
) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    header = [*headers, "error"] if headers else ["row", "error"]
    writer.writerow([neutralize_formula(h) for h in header])
    yield ("\ufeff" + buf.getvalue()).encode()  # BOM: Excel opens umlauts correctly
    async with session_factory() as s:
        result = await s.stream(
            repository.row_errors_query(batch_id).execution_options(yield_per=ERRORS_CSV_BATCH)
        )
        async for part in result.partitions():
            buf.seek(0)
            buf.truncate()
            for row_no, message, raw in part:
                reason = f"row {row_no}: {message}"
                if headers:
                    cells = [*(parsing.text(v) for v in raw or [])]
                    cells += [""] * max(0, len(headers) - len(cells))
                    cells.append(reason)
                else:
                    cells = [str(row_no), reason]
                writer.writerow([neutralize_formula(c) for c in cells])
            yield buf.getvalue().encode()


async def preflight(
    session: AsyncSession, actor: Actor, settings: Settings, source: Source, options: ImportOptions
) -> None:
    """Reject whole-file problems (unreadable, empty, no identity column, dates whose order
    no value decides) before any write; the date orders found are added to `options`."""
    header, rows = open_rows(source, settings)
    try:
        ctx = await load_context(session, actor, settings, options, header)
        if next(rows, None) is None:
            raise FileProblem("The file has a header but no rows")
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    await asyncio.to_thread(resolve_dates, ctx, source)
