"""The import pipeline: rows → validated, deduplicated, analysed, assigned, inserted in chunks.

One code path serves the synchronous endpoint (small files, one transaction), the worker
(large files, a transaction and a checkpoint per chunk) and the benchmark.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from uuid_utils.compat import uuid7

from leadflow.ai.service import analyze_leads
from leadflow.assignment.service import RulePicker
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.imports import parsing, repository
from leadflow.imports.errors import (
    DUPLICATE_OUT_OF_SCOPE,
    INVALID_VALUE,
    OWNER_ID_COLUMN,
    STAGE_FALLBACK,
)
from leadflow.imports.options import ImportOptions
from leadflow.imports.rows import (
    ImportContext,
    Source,
    build_record,
    ensure_fields,
    finish_record,
    lead_context,
    load_context,
    open_rows,
    resolve_dates,
)
from leadflow.imports.updates import apply_updates
from leadflow.kit.clock import utcnow
from leadflow.leads import bulk
from leadflow.models.import_batch import ImportBatch
from leadflow.notifications import service as notifications

CHUNK_ROWS = 2000
MAX_REPORTED_ERRORS = 1000


@dataclass
class Report:
    """Counts of one run (also the synchronous response)."""

    total_rows: int = 0
    imported_count: int = 0
    updated_count: int = 0
    skipped_count: int = 0
    needs_action_count: int = 0
    without_last_contact_count: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    warning_count: int = 0
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def warn(self, warning: dict[str, Any]) -> None:
        """Count a warning and keep the first MAX_REPORTED_ERRORS."""
        self.warning_count += 1
        if len(self.warnings) < MAX_REPORTED_ERRORS:
            self.warnings.append(warning)


class ImportFenced(Exception):
    """The batch was claimed again (lease expired): this worker must stop and roll back."""

    def __init__(self, batch_id: uuid.UUID) -> None:
        super().__init__(f"import {batch_id}: claim taken over by another worker")
        self.batch_id = batch_id


async def process(
    session: AsyncSession,
    *,
    actor: Actor,
    settings: Settings,
    source: Source,
    options: ImportOptions,
    batch: ImportBatch | None,
    claim_token: str | None = None,
    commit_each_chunk: bool = False,
) -> Report:
    """Run the pipeline over `source`. With a batch, resume after `batch.processed_rows`.

    Every chunk's checkpoint is written only while `claim_token` still holds the batch
    (ImportFenced otherwise, with the chunk's writes left to the caller to roll back).
    """
    org_id = actor.organization_id
    header, rows = open_rows(source, settings)
    ctx = await load_context(session, actor, settings, options, header)
    # Dates with `/` or `-`: the order is decided per column before any row is built.
    await asyncio.to_thread(resolve_dates, ctx, source)
    report = Report(ignored_columns=ctx.plan.ignored)
    for col in ctx.plan.columns:
        if col.rule == "owner_id":
            report.warn(
                {
                    "row": None,
                    "column": col.header,
                    "value": None,
                    "message": col.reason,
                    "code": OWNER_ID_COLUMN,
                }
            )
    picker = await RulePicker.load(session, org_id) if options.assignee_id is None else None
    assigned: dict[uuid.UUID, int] = {}
    reader = _ChunkReader(ctx, rows, skip=batch.processed_rows if batch is not None else 0)
    # Reading, parsing and validating the next chunk (pure Python) runs in a thread while
    # this one is written: PostgreSQL maintains the lead indexes during COPY on its own core
    # instead of waiting for the parser, and the other way round.
    ahead: asyncio.Future[_Prepared | None] | None = None

    def read_ahead() -> None:
        nonlocal ahead
        if ahead is None:
            ahead = asyncio.ensure_future(asyncio.to_thread(reader.next))

    read_ahead()
    try:
        while True:
            assert ahead is not None
            prepared = await ahead
            ahead = None
            if prepared is None:
                break
            await _chunk(
                session, ctx, prepared, report, batch, claim_token, picker, assigned, read_ahead
            )
            read_ahead()
            if commit_each_chunk:
                await session.commit()
    finally:
        if ahead is not None and not ahead.done():
            # A failed chunk: let the reader thread finish before the session is torn down.
            await asyncio.gather(ahead, return_exceptions=True)
    report.total_rows = reader.total_rows
    for value, choice in ctx.resolver.choices().items():
        if choice.rule == "fallback":
            report.warn(
                {
                    "row": None,
                    "column": None,
                    "value": value,
                    "message": f"status {value!r}: {choice.reason}",
                    "code": STAGE_FALLBACK,
                }
            )
    if not options.dry_run:
        for user, n in assigned.items():
            await notifications.notify(
                session,
                organization_id=org_id,
                user_id=user,
                kind="import_assigned",
                title=f"{n} imported leads were assigned to you",
                data={"import_batch_id": str(batch.id) if batch else None, "count": n},
                delivery_key=f"import-assigned:{batch.id if batch else uuid.uuid4()}:{user}",
            )
    if batch is not None:
        batch.total_rows = report.total_rows
        batch.ignored_columns = report.ignored_columns
        batch.headers = header
    return report


@dataclass
class _Prepared:
    """One chunk, parsed and validated: the rows built into records and the failed ones."""

    size: int
    built: list[tuple[int, dict[str, Any], list[Any]]]  # row, record, raw values
    errors: list[tuple[int, dict[str, Any], list[Any]]]


class _ChunkReader:
    """Pulls the next CHUNK_ROWS data rows and builds them (runs in a worker thread)."""

    def __init__(self, ctx: ImportContext, rows: Iterator[list[Any]], *, skip: int) -> None:
        self.ctx = ctx
        self.rows = rows
        self.skip = skip  # rows a resumed batch already processed
        self.total_rows = 0
        self.row_no = 1  # the header is line 1

    def next(self) -> _Prepared | None:
        """The next chunk, or None at the end of the file."""
        chunk = _Prepared(0, [], [])
        for values in self.rows:
            self.row_no += 1
            if not any(parsing.text(v) for v in values):
                continue
            self.total_rows += 1
            if self.total_rows <= self.skip:
                continue
            chunk.size += 1
            rec, err = build_record(self.ctx, values)
            if err is not None:
                chunk.errors.append((self.row_no, err, values))
            else:
                assert rec is not None
                chunk.built.append((self.row_no, rec, values))
            if chunk.size >= CHUNK_ROWS:
                return chunk
        return chunk if chunk.size else None


async def _chunk(
    session: AsyncSession,
    ctx: ImportContext,
    prepared: _Prepared,
    report: Report,
    batch: ImportBatch | None,
    claim_token: str | None,
    picker: RulePicker | None,
    assigned: dict[uuid.UUID, int],
    before_write: Callable[[], None],
) -> None:
    if not ctx.options.dry_run:
        # Earlier chunks are already in the table, so the database lookup below finds their
        # rows; remembering only this chunk keeps memory flat at any file size.
        ctx.seen.clear()
    built, errors = prepared.built, list(prepared.errors)
    by_email, by_phone = await repository.existing_ids(
        session,
        ctx.actor,
        [r["email"] for _, r, _ in built if r.get("email")],
        [r["phone"] for _, r, _ in built if r.get("phone")],
    )
    inserts: list[dict[str, Any]] = []
    updates: list[tuple[uuid.UUID, dict[str, Any]]] = []
    mode = ctx.options.on_duplicate
    for row_no, rec, values in built:
        keys = [parsing.digest("e:" + rec["email"])] if rec.get("email") else []
        if rec.get("phone"):
            keys.append(parsing.digest("p:" + rec["phone"]))
        email, phone = rec.get("email") or "", rec.get("phone") or ""
        existing = by_email.get(email) or by_phone.get(phone)
        # Matches exist, but only outside the importer's scope (None marks those).
        hidden = existing is None and (email in by_email or phone in by_phone)
        in_file = any(k in ctx.seen for k in keys)
        ctx.seen.update(keys)
        if mode != "create" and in_file:
            report.skipped_count += 1
            continue
        if mode != "create" and hidden:
            # Neither update a lead the importer may not see nor add a second copy of it.
            column = "email" if email in by_email else "phone"
            errors.append(
                (
                    row_no,
                    {
                        "column": column,
                        "value": email if column == "email" else phone,
                        "message": "a lead with this "
                        + column
                        + " exists outside your access; the row was not imported",
                        "code": DUPLICATE_OUT_OF_SCOPE,
                    },
                    values,
                )
            )
            continue
        if existing is not None and mode == "skip":
            report.skipped_count += 1
            continue
        if existing is not None and mode == "update":
            # Only a status the file (or default_status) gives moves an existing lead; the
            # fallback to the first stage is for new leads.
            rec["_keep_status"] = not (rec.get("raw_status") or ctx.options.default_status)
            updates.append((existing, rec))
        else:
            inserts.append(rec)
    todo = inserts + [rec for _, rec in updates]
    analyses: list[Any] = (
        await analyze_leads([lead_context(r, ctx) for r in todo], now=ctx.now)
        if ctx.options.analyze
        else [None] * len(todo)
    )
    for rec, analysis in zip(todo, analyses, strict=True):
        finish_record(rec, analysis, ctx)
        if rec["needs_action"]:
            report.needs_action_count += 1
        if rec.get("last_contacted_at") is None:
            report.without_last_contact_count += 1
    batch_id = batch.id if batch is not None else None
    new = {id(rec) for rec in inserts}
    for row_no, rec, _ in built:
        # Only new leads take their owner (an update does not reassign).
        for warning in rec.pop("_warnings", ()):
            if id(rec) in new:
                report.warn({"row": row_no, **warning})
    for rec in inserts:
        if rec.get("assignee_id") is None:
            rec["assignee_id"] = ctx.options.assignee_id
        elif rec["assignee_id"] != ctx.user_id:
            # The owner column assigned it: the owner hears of it in the import's summary.
            assigned[rec["assignee_id"]] = assigned.get(rec["assignee_id"], 0) + 1
    report.imported_count += len(inserts)
    report.error_count += len(errors)
    for row_no, err, _ in errors:
        if len(report.errors) < MAX_REPORTED_ERRORS:
            report.errors.append({"row": row_no, "code": err.get("code", INVALID_VALUE), **err})
    if ctx.options.dry_run:
        report.updated_count += len(updates)
        return
    before_write()
    await ensure_fields(session, ctx, todo)
    # New leads go through the leads service like any other: history, SLA clocks, events.
    by_rule = await bulk.create_records(
        session,
        ctx.actor,
        ctx.settings,
        inserts,
        now=ctx.now,
        reason="import",
        batch_id=batch_id,
        picker=picker,
    )
    for user_id, count in by_rule.items():
        assigned[user_id] = assigned.get(user_id, 0) + count
    updated = await apply_updates(session, ctx, batch_id, updates)
    report.updated_count += updated
    report.skipped_count += len(updates) - updated  # gone (deleted) since they were matched
    if batch is not None:
        # Only the first `import_max_stored_errors` failed rows are stored (errors.csv, the
        # detail); `error_count` counts them all. `batch.error_count` excludes this chunk yet.
        room = max(0, ctx.settings.import_max_stored_errors - batch.error_count)
        if errors and room:
            await repository.insert_row_errors(
                session,
                [
                    {
                        "id": uuid7(),
                        "batch_id": batch.id,
                        "row": row_no,
                        "column": err["column"],
                        "value": err["value"],
                        "message": err["message"],
                        "code": err.get("code", INVALID_VALUE),
                        "raw": [parsing.text(v) for v in values],
                    }
                    for row_no, err, values in errors[:room]
                ],
            )
        progress = {
            "processed_rows": batch.processed_rows + prepared.size,
            "imported_count": batch.imported_count + len(inserts),
            "updated_count": batch.updated_count + updated,
            # Built rows neither written nor failed were skipped as duplicates.
            "skipped_count": batch.skipped_count
            + (len(built) - len(inserts) - updated - (len(errors) - len(prepared.errors))),
            "error_count": batch.error_count + len(errors),
            "needs_action_count": batch.needs_action_count
            + sum(1 for r in todo if r["needs_action"]),
            "without_last_contact_count": batch.without_last_contact_count
            + sum(1 for r in todo if r.get("last_contacted_at") is None),
            "updated_at": utcnow(),
        }
        # The fenced checkpoint: a worker whose claim was taken over stops here, before
        # its chunk commits (the caller rolls it back).
        if not await repository.checkpoint(session, batch.id, claim_token, progress):
            raise ImportFenced(batch.id)
        for key, value in progress.items():
            set_committed_value(batch, key, value)
    await session.flush()
