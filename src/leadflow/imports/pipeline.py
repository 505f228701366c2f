"""The import pipeline: rows → validated, deduplicated, analysed, assigned, inserted in chunks.

One code path serves the synchronous endpoint (small files, one transaction), the worker
(large files, a transaction and a checkpoint per chunk) and the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from uuid_utils.compat import uuid7

from leadflow.assignment.service import RulePicker
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.db.dialect import is_postgres
from leadflow.imports import parsing, repository
from leadflow.imports.errors import (
    DUPLICATE_OUT_OF_SCOPE,
    INVALID_VALUE,
    OWNER_ID_COLUMN,
    REFUSED_BY_DATABASE,
    STAGE_FALLBACK,
    RowsRefused,
)
from leadflow.imports.options import ImportOptions
from leadflow.imports.parsing import FileProblem
from leadflow.imports.prepare import Prepared, open_reader
from leadflow.imports.rows import (
    ImportContext,
    Source,
    ensure_fields,
    load_context,
    open_rows,
    resolve_dates,
)
from leadflow.imports.updates import apply_updates
from leadflow.kit.clock import utcnow
from leadflow.kit.gc import long_lived_frozen
from leadflow.kit.problems import bad_value, sqlstate
from leadflow.leads import bulk
from leadflow.models.import_batch import ImportBatch
from leadflow.notifications import service as notifications

log = logging.getLogger("leadflow.imports")
MAX_REPORTED_ERRORS = 1000
# A long import refreshes the planner statistics of `leads` once it has written this many
# leads, and again each time it has written as many as the statistics last counted.
ANALYZE_AFTER_ROWS = 10_000
ANALYZE_LOCK_MS = 2000
# Rows of one chunk the database may refuse one by one (`_in_parts`) before the import
# gives up: beyond a few, the cause is not in the rows, and each costs a write of its own.
MAX_REFUSED_PER_CHUNK = 50
# While a chunk is matched, the one before is being written on the same event loop: the
# matching gives the loop back this often, so the COPY's rows keep flowing to PostgreSQL.
YIELD_ROWS = 25


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
    lookups: Callable[[], AsyncSession] | None = None,
) -> Report:
    """Run the pipeline over `source`. With a batch, resume after `batch.processed_rows`.

    Every chunk's checkpoint is written only while `claim_token` still holds the batch
    (ImportFenced otherwise, with the chunk's writes left to the caller to roll back).
    `lookups` opens a second session for the duplicate lookups of a background import, so
    the next chunk is matched while the one before is written.
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
    reader = open_reader(
        ctx,
        source,
        rows,
        skip=batch.processed_rows if batch is not None else 0,
        in_process=commit_each_chunk and _large(source, settings),
    )
    stats = _PlannerStatistics()
    stages = _Stages()
    # A background import allocates millions of row dicts: the collector's passes leave the
    # application's long-lived objects out meanwhile (kit/gc.py).
    frozen = long_lived_frozen() if commit_each_chunk else contextlib.nullcontext()

    # Background on PostgreSQL: chunk N+1 is matched (on a second connection) and made ready
    # while PostgreSQL writes chunk N, so the two cores work at once instead of by turns.
    background = commit_each_chunk and is_postgres(session)

    async def write(decision: _Decision) -> None:
        if background:
            # Each chunk commits with its checkpoint, so a chunk whose commit a crash
            # loses (the last ~0.6 s of them) is read again on resume; the batch's
            # final commit is synchronous and makes everything before it durable.
            await session.execute(sql_text("SET LOCAL synchronous_commit = off"))
        await _write(session, ctx, decision, report, assigned, batch, claim_token)
        if commit_each_chunk:
            await session.commit()
            await stats.after_commit(session, report.imported_count)

    writing: asyncio.Task[None] | None = None
    lookup_session: AsyncSession | None = None
    try:
        if background:
            lookup_session = await _second_session(session, lookups)
        with frozen:
            # Where the loop waits (logged at the end): for the next prepared chunk, for the
            # matching and making ready, or for the chunk before to be written.
            mark = time.perf_counter()
            while (prepared := await reader.next()) is not None:
                mark = stages.add("reading", mark)
                decision = await _decide(
                    lookup_session or session,
                    ctx,
                    prepared,
                    report,
                    picker,
                    assigned,
                    batch.id if batch is not None else None,
                )
                if lookup_session is not None:
                    await lookup_session.commit()  # its snapshot is not held while writing
                mark = stages.add("matching", mark)
                if writing is not None:
                    await writing  # the chunk before is committed before this one writes
                    writing = None
                if lookup_session is not None:
                    writing = asyncio.create_task(write(decision))
                else:
                    await write(decision)
                mark = stages.add("writing", mark)
            mark = stages.add("reading", mark)  # the read that found the end
            if writing is not None:
                await writing
                writing = None
            stages.add("writing", mark)
    finally:
        if writing is not None:
            # The loop stopped while the chunk before was being written: that write ends
            # first (committed with its checkpoint, or failed) so the caller rolls back a
            # quiet session; the loop's own error is the one raised.
            await asyncio.wait({writing})
            if not writing.cancelled():
                writing.exception()
        if lookup_session is not None:
            await lookup_session.close()
        await reader.close()
    report.total_rows = reader.total_rows
    log.info(
        "import stages",
        extra={"import_stage_seconds": stages.rounded(), "rows": report.total_rows},
    )
    for value, choice in reader.stage_choices().items():
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


async def _second_session(
    session: AsyncSession, lookups: Callable[[], AsyncSession] | None
) -> AsyncSession | None:
    """A session of `lookups` on a connection other than `session`'s, else None (a factory
    bound to the caller's own connection, as in a test transaction)."""
    if lookups is None:
        return None
    other = lookups()
    try:
        mine = await (await session.connection()).get_raw_connection()
        theirs = await (await other.connection()).get_raw_connection()
        if theirs.driver_connection is mine.driver_connection:
            await other.close()
            return None
        await other.commit()
    except BaseException:
        await other.close()
        raise
    return other


class _Stages:
    """Seconds the import loop spent per stage (with the write overlapped, `writing` is only
    the wait for the chunk before: a large share means the database write is the bottleneck)."""

    def __init__(self) -> None:
        self.seconds = {"reading": 0.0, "matching": 0.0, "writing": 0.0}

    def add(self, stage: str, since: float) -> float:
        """Count the time from `since` to now for `stage`; returns now."""
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now

    def rounded(self) -> dict[str, float]:
        """The seconds per stage, to the hundredth."""
        return {k: round(v, 2) for k, v in self.seconds.items()}


class _PlannerStatistics:
    """Keeps the statistics of `leads` in step with a long import (PostgreSQL).

    The duplicate lookups are planned from them. A load that doubles the table before
    autovacuum notices (it wakes once a minute, and may be off) leaves the planner sure the
    organisation has few leads; it then scans all of them for every chunk instead of probing
    the email and phone indexes, and the import turns quadratic (at 1M rows, 160 s of 290).
    """

    def __init__(self) -> None:
        self.known: int | None = None  # leads the statistics counted at the last ANALYZE
        self.written_then = 0
        self.not_ours = False  # ANALYZE had no effect: the role does not own `leads`

    async def after_commit(self, session: AsyncSession, written: int) -> None:
        """ANALYZE `leads` once the import has written as many leads as the statistics know."""
        if not is_postgres(session) or self.not_ours:
            return
        if self.known is None:
            self.known = await repository.lead_table_rows(session)
        if written - self.written_then < max(ANALYZE_AFTER_ROWS, self.known):
            return
        self.written_then = written
        # In its own transaction, after the chunk's commit, so the next chunk starts with
        # the new plan. A VACUUM or an index build holding the table is not waited for (the
        # import's lease would run out): the next threshold tries again.
        try:
            async with session.begin_nested():
                await repository.analyze_lead_table(
                    session, lock_timeout_ms=ANALYZE_LOCK_MS, columns=repository.LOOKUP_COLUMNS
                )
        except DBAPIError:
            log.info("leads statistics not refreshed: the table is busy")
            await session.commit()
            return
        await session.commit()
        known = await repository.lead_table_rows(session)
        # PostgreSQL skips the table with only a warning for a role that does not own it.
        self.not_ours = known == self.known
        self.known = known


def _large(source: Source, settings: Settings) -> bool:
    """Whether a file is big enough to be worth preparing in a process of its own."""
    if source.path is None:
        return False
    try:
        return source.path.stat().st_size >= settings.import_prepare_process_min_bytes
    except OSError:
        return False


@dataclass
class _Decision:
    """A chunk matched against the database: what to insert, update and report failed."""

    prepared: Prepared
    errors: list[tuple[int, dict[str, Any], list[Any]]]
    new: bulk.NewLeads | None
    updates: list[tuple[uuid.UUID, dict[str, Any]]]
    # The new leads counted in an assignee's summary (owner column or rules): id(record) →
    # user, so a lead the database refuses is taken out of the count again.
    counted: dict[int, uuid.UUID] = field(default_factory=dict)

    @property
    def todo(self) -> list[dict[str, Any]]:
        """The records written: new leads, then the updates' values."""
        new = self.new.records if self.new is not None else []
        return new + [rec for _, rec in self.updates]


async def _decide(
    session: AsyncSession,
    ctx: ImportContext,
    prepared: Prepared,
    report: Report,
    picker: RulePicker | None,
    assigned: dict[uuid.UUID, int],
    batch_id: uuid.UUID | None,
) -> _Decision:
    """Match a chunk's rows against the file so far and the organisation's leads, and make
    its new leads ready to write. Reads only: `session` may be a second connection."""
    if not ctx.options.dry_run:
        # Earlier chunks are in the table (all but the last, which may still be being
        # written: its keys are kept), so the database lookup below finds their rows;
        # remembering two chunks only keeps memory flat at any file size.
        ctx.seen_before, ctx.seen = ctx.seen, ctx.seen_before
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
    seen, seen_before = ctx.seen, ctx.seen_before
    for n, (row_no, rec, values) in enumerate(built, 1):
        if n % YIELD_ROWS == 0:
            await asyncio.sleep(0)
        keys = ["e:" + rec["email"]] if rec.get("email") else []
        if rec.get("phone"):
            keys.append("p:" + rec["phone"])
        email, phone = rec.get("email") or "", rec.get("phone") or ""
        existing = by_email.get(email) or by_phone.get(phone)
        # Matches exist, but only outside the importer's scope (None marks those).
        hidden = existing is None and (email in by_email or phone in by_phone)
        status_given = rec.pop("_status_given")
        in_file = any(k in seen or k in seen_before for k in keys)
        seen.update(keys)
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
            rec["_keep_status"] = not (status_given or ctx.options.default_status)
            updates.append((existing, rec))
        else:
            inserts.append(rec)
    todo = inserts + [rec for _, rec in updates]
    for rec in todo:
        # Analysed and finished as the chunk was prepared.
        if rec["needs_action"]:
            report.needs_action_count += 1
        if rec.get("last_contacted_at") is None:
            report.without_last_contact_count += 1
    new = {id(rec) for rec in inserts}
    for row_no, rec, _ in built:
        # Only new leads take their owner (an update does not reassign).
        for warning in rec.pop("_warnings", ()):
            if id(rec) in new:
                report.warn({"row": row_no, **warning})
    counted: dict[int, uuid.UUID] = {}
    for rec in inserts:
        if rec.get("assignee_id") is None:
            rec["assignee_id"] = ctx.options.assignee_id
        elif rec["assignee_id"] != ctx.user_id:
            # The owner column assigned it: the owner hears of it in the import's summary.
            counted[id(rec)] = rec["assignee_id"]
    unassigned = [rec for rec in inserts if rec["assignee_id"] is None]
    report.imported_count += len(inserts)
    report.error_count += len(errors)
    for row_no, err, _ in errors:
        if len(report.errors) < MAX_REPORTED_ERRORS:
            report.errors.append({"row": row_no, "code": err.get("code", INVALID_VALUE), **err})
    if ctx.options.dry_run:
        report.updated_count += len(updates)
        return _Decision(prepared, errors, None, updates)
    # New leads go through the leads service like any other: history, SLA clocks, events.
    ready = bulk.NewLeads(ctx.now, "import", batch_id, picker)
    for start in range(0, len(inserts), YIELD_ROWS):
        ready.add(ctx.actor, inserts[start : start + YIELD_ROWS])
        await asyncio.sleep(0)
    if picker is not None:
        plain: dict[Any, uuid.UUID] = {}  # the rules' few assignees, from the COPY form
        for rec in unassigned:
            if (wire := rec["assignee_id"]) is not None:  # the rules gave it one
                if wire not in plain:
                    plain[wire] = uuid.UUID(bytes=wire.bytes)
                counted[id(rec)] = plain[wire]
    for user_id in counted.values():
        assigned[user_id] = assigned.get(user_id, 0) + 1
    return _Decision(prepared, errors, ready, updates, counted)


async def _in_parts(
    session: AsyncSession,
    n: int,
    write: Callable[[int, int], Awaitable[int]],
    *,
    refused_before: int = 0,
) -> tuple[int, list[tuple[int, str]]]:
    """`write(0, n)` in a savepoint; if the database refuses the set for a value (a data
    exception or an integrity violation), each half is written the same way, down to single
    items. So a value the row checks let through costs its own row, not its chunk: returns
    what the writes counted and the refused items' indexes with the reason. `refused_before`:
    rows of the same chunk refused already (one limit per chunk)."""
    done, refused = 0, []
    todo = [(0, n)] if n else []
    while todo:
        start, stop = todo.pop()
        try:
            async with session.begin_nested():
                done += await write(start, stop)
        except Exception as exc:
            reason = _refusal(exc)
            if reason is None:
                raise
            if stop - start == 1:
                refused.append((start, reason))
                if refused_before + len(refused) > MAX_REFUSED_PER_CHUNK:
                    raise TooManyRefused(refused_before + len(refused), reason) from exc
            else:
                mid = (start + stop) // 2
                todo += [(mid, stop), (start, mid)]  # the first half is written first
    return done, sorted(refused)


class TooManyRefused(FileProblem):
    """More rows of one chunk were refused by the database than `MAX_REFUSED_PER_CHUNK`:
    the cause is not in a few values, so the import stops (nothing of the chunk is kept)."""

    error = RowsRefused

    def __init__(self, count: int, reason: str) -> None:
        super().__init__(
            f"The database refused more than {count - 1} rows of one chunk; the last: {reason}"
        )


def _refusal(exc: BaseException) -> str | None:
    """Why the database refused a value — a data exception or an integrity violation
    (SQLSTATE class 22 or 23), or a value the driver could not encode — else None (a lost
    connection, a lock timeout: those stop the import as before). Users get the SQLSTATE, not
    the database's own text (it names constraints and columns); that is logged."""
    state = sqlstate(exc)
    integrity = isinstance(exc, IntegrityError) or (state is not None and state[:2] == "23")
    if not (integrity or bad_value(exc)):
        return None
    # The database's message only: a wrapped error's text also carries the rows' values.
    orig = getattr(exc, "orig", None) or exc
    log.info("the database refused an imported value: %s", str(orig).strip()[:300])
    if integrity:
        what = "a value breaks a rule of the database"
    else:
        what = "a value is out of the range or character set the database can store"
    return f"{what} ({state})" if state else what


def _forget_keys(ctx: ImportContext, records: list[dict[str, Any]]) -> None:
    """Refused rows are not in the table: a later row with the same email or phone is not
    their duplicate (rows already matched against them — later in the same chunk, or in the
    next one, matched while this one was written — stay skipped)."""
    for rec in records:
        for key in ("e:" + (rec.get("email") or ""), "p:" + (rec.get("phone") or "")):
            ctx.seen.discard(key)
            ctx.seen_before.discard(key)


def _report_refused(
    report: Report,
    built: list[tuple[int, dict[str, Any], list[Any]]],
    errors: list[tuple[int, dict[str, Any], list[Any]]],
    records: list[dict[str, Any]],
    reasons: list[str],
) -> None:
    """Count and add the rows of `records` the database refused to the chunk's errors."""
    rows = {id(rec): (row_no, values) for row_no, rec, values in built}
    for rec, reason in zip(records, reasons, strict=True):
        row_no, values = rows[id(rec)]
        err = {
            "column": None,
            "value": None,
            "message": f"the database refused the row: {reason}",
            "code": REFUSED_BY_DATABASE,
        }
        errors.append((row_no, err, values))
        report.error_count += 1
        if rec["needs_action"]:
            report.needs_action_count -= 1
        if rec.get("last_contacted_at") is None:
            report.without_last_contact_count -= 1
        if len(report.errors) < MAX_REPORTED_ERRORS:
            report.errors.append({"row": row_no, **err})
    errors.sort(key=lambda e: e[0])
    report.errors.sort(key=lambda e: e["row"] or 0)


async def _write(
    session: AsyncSession,
    ctx: ImportContext,
    decision: _Decision,
    report: Report,
    assigned: dict[uuid.UUID, int],
    batch: ImportBatch | None,
    claim_token: str | None,
) -> None:
    """Write a decided chunk, and its checkpoint when it belongs to a batch. `assigned`:
    the import's count of new leads per assignee (a refused lead leaves it)."""
    if decision.new is None:
        return  # a dry run
    prepared, errors, updates = decision.prepared, decision.errors, decision.updates
    built, inserts, todo = prepared.built, decision.new.records, decision.todo
    batch_id = batch.id if batch is not None else None
    new = decision.new

    async def write_new(start: int, stop: int) -> int:
        await bulk.write_records(session, ctx.actor, ctx.settings, new.part(start, stop))
        return stop - start

    async def write_updates(start: int, stop: int) -> int:
        return await apply_updates(session, ctx, batch_id, updates[start:stop])

    _, refused = await _in_parts(session, len(inserts), write_new)
    updated, refused_updates = await _in_parts(
        session, len(updates), write_updates, refused_before=len(refused)
    )
    if refused or refused_updates:
        gone = [inserts[i] for i, _ in refused] + [updates[i][1] for i, _ in refused_updates]
        _report_refused(report, built, errors, gone, [m for _, m in refused + refused_updates])
        # Only `errors` grows: a refused update is no longer one of the chunk's updates.
        report.imported_count -= len(refused)
        for i, _ in refused:
            user = decision.counted.get(id(inserts[i]))
            if user is not None:
                assigned[user] -= 1
                if not assigned[user]:
                    del assigned[user]
        _forget_keys(ctx, gone)
        dropped = {id(rec) for rec in gone}
        inserts = [rec for rec in inserts if id(rec) not in dropped]
        todo = [rec for rec in todo if id(rec) not in dropped]
        updates = [u for u in updates if id(u[1]) not in dropped]
    # Custom values are stored with the lead, not through their definition, so the fields
    # the file fills are defined after the writes: one that only refused rows used is not.
    await ensure_fields(session, ctx, todo)
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
