"""The import pipeline: rows → validated, deduplicated, analysed, assigned, inserted in chunks.

One code path serves the synchronous endpoint (small files, one transaction), the worker
(large files, a transaction and a checkpoint per chunk) and the benchmark.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, BinaryIO, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from uuid_utils.compat import uuid7

from leadflow.ai.local import LeadContext, normalize_status
from leadflow.ai.service import analyze_leads
from leadflow.assignment.service import RulePicker
from leadflow.audit.service import record
from leadflow.authz.actor import Actor
from leadflow.authz.grants import narrower_scope
from leadflow.authz.permissions import RowScope
from leadflow.calendar.business import BusinessCalendar
from leadflow.config import Settings
from leadflow.customfields import service as customfields
from leadflow.db.dialect import is_postgres
from leadflow.db.engine import transactions_that
from leadflow.exceptions import Conflict, NotFound, ValidationFailed
from leadflow.imports import parsing, repository
from leadflow.imports.parsing import FileProblem
from leadflow.kit.clock import utcnow
from leadflow.kit.normalize import neutralize_formula
from leadflow.leads import bulk
from leadflow.leads.service import split_name
from leadflow.models.custom_field import CustomFieldDefinition
from leadflow.models.import_batch import ImportBatch, ImportFileChunk, ImportRowError, ImportUpdate
from leadflow.models.lead import Lead
from leadflow.models.organization import Organization
from leadflow.models.user import User
from leadflow.notifications import service as notifications
from leadflow.timeline.registry import TimelineEntry, TimelineSource, register_source
from leadflow.users import repository as users
from leadflow.worker.jobs import JobContext, enqueue_job, job

log = logging.getLogger("leadflow.imports")
CHUNK_ROWS = 2000
FILE_CHUNK_BYTES = 1 << 20
MAX_REPORTED_ERRORS = 1000
_LIMITS = {
    "first_name": 120,
    "last_name": 120,
    "company": 200,
    "channel": 40,
    "source": 120,
    "utm_source": 200,
    "utm_medium": 200,
    "utm_campaign": 200,
}
OnDuplicate = Literal["skip", "update", "create"]
# Limits for callers without settings at hand (`headers_of`): the defaults, no environment.
_DEFAULT_SETTINGS = Settings.model_construct()


@dataclass
class ImportOptions:
    """What the caller asked for."""

    dry_run: bool = False
    on_duplicate: OnDuplicate = "skip"
    mapping: dict[str, str] | None = None
    default_status: str | None = None
    assignee_id: uuid.UUID | None = None
    analyze: bool = True

    def to_json(self) -> dict[str, Any]:
        """JSON form (stored on the batch)."""
        return {
            "dry_run": self.dry_run,
            "on_duplicate": self.on_duplicate,
            "mapping": self.mapping,
            "default_status": self.default_status,
            "assignee_id": str(self.assignee_id) if self.assignee_id else None,
            "analyze": self.analyze,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportOptions:
        """Inverse of `to_json`."""
        return cls(
            dry_run=bool(data.get("dry_run")),
            on_duplicate=data.get("on_duplicate", "skip"),
            mapping=data.get("mapping"),
            default_status=data.get("default_status"),
            assignee_id=uuid.UUID(data["assignee_id"]) if data.get("assignee_id") else None,
            analyze=data.get("analyze", True),
        )


@dataclass
class Source:
    """An uploaded file: its format and a way to read its bytes (again) in chunks.

    `open_file`, when given, opens the bytes as a new seekable file (XLSX is read from one);
    without it an XLSX source is spooled to a temporary file first.
    """

    fmt: Literal["csv", "json", "xlsx"]
    chunks: Callable[[], Iterator[bytes]]
    filename: str | None = None
    open_file: Callable[[], BinaryIO] | None = None


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


def open_rows(
    source: Source, settings: Settings | None = None
) -> tuple[list[str], Iterator[list[Any]]]:
    """Header and data rows of a source (FileProblem for unreadable files).

    `settings` supplies the XLSX limits (the defaults without it).
    """
    if source.fmt == "csv":
        return parsing.csv_rows(parsing.decode_lines(source.chunks()))
    if source.fmt == "xlsx":
        return _xlsx_rows(source, settings or _DEFAULT_SETTINGS)
    return parsing.json_rows(parsing.load_json(b"".join(source.chunks())))


def _xlsx_rows(source: Source, settings: Settings) -> tuple[list[str], Iterator[list[Any]]]:
    fh: BinaryIO
    if source.open_file is not None:
        fh = source.open_file()
    else:
        fh = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the row iterator)
        for piece in source.chunks():
            fh.write(piece)
        fh.seek(0)
    try:
        header, rows = parsing.xlsx_rows(
            fh,
            max_uncompressed=settings.import_xlsx_max_uncompressed_bytes,
            max_cells=settings.import_xlsx_max_cells,
        )
    except BaseException:
        fh.close()
        raise
    return header, _closing(rows, fh)


def _closing(rows: Iterator[list[Any]], fh: BinaryIO) -> Iterator[list[Any]]:
    try:
        yield from rows
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
        fh.close()


@dataclass
class _Ctx:
    actor: Actor  # the importer: its row scope bounds duplicate matching and updates
    org_id: uuid.UUID
    user_id: uuid.UUID | None
    settings: Settings
    options: ImportOptions
    stages: dict[str, str]  # folded key or name -> key
    first_stage: str
    defs: dict[str, CustomFieldDefinition]
    plan: parsing.ColumnPlan
    headers: list[str]
    tz: tzinfo = UTC  # dates without an offset are wall-clock times of the organisation
    seen: set[int] = field(default_factory=set)
    stage_of: dict[str, str | None] = field(default_factory=dict)
    now: datetime = field(default_factory=utcnow)


def _stage_key(ctx: _Ctx, raw: str) -> str | None:
    if raw in ctx.stage_of:  # a file repeats a handful of status spellings
        return ctx.stage_of[raw]
    folded = parsing.header_key(raw)
    if folded in ctx.stages:
        key: str | None = ctx.stages[folded]
    else:
        guess = normalize_status(raw)
        key = guess if guess in ctx.stages.values() else None
    if len(ctx.stage_of) < 1000:
        ctx.stage_of[raw] = key
    return key


def _build(ctx: _Ctx, values: list[Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A lead record from one row, or an error {column, value, message}."""
    rec: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for i, target in enumerate(ctx.plan.targets):
        if target is None or i >= len(values):
            continue
        raw = values[i]
        value = parsing.text(raw)
        if not value:
            continue
        column = ctx.headers[i]
        try:
            if target == "email":
                rec["email"] = parsing.email_value(value)
            elif target == "phone":
                rec["phone"] = parsing.phone_value(value, ctx.settings.default_phone_region)
            elif target == "last_contacted_at":
                rec["last_contacted_at"] = parsing.date_value(
                    raw if not isinstance(raw, str) else value, ctx.tz
                )
            elif target == "status":
                key = _stage_key(ctx, value)
                if key is not None:
                    rec["status"] = key
                rec["raw_status"] = value
            elif target == "tags":
                rec["tags"] = parsing.tags_value(value)
            elif target == "disg_type":
                letter = value[:1].upper()
                if letter in "DISGC":
                    rec["disg_type"] = letter
            elif target == "score":
                score = int(float(value.replace(",", ".")))
                if not 0 <= score <= 100:
                    raise ValueError("score must be between 0 and 100")
                rec["score"] = score
            elif target.startswith("custom."):
                custom[target[7:]] = raw if not isinstance(raw, str) else value
            elif target == "notes":
                rec["notes"] = value[:20000]
            else:
                rec[target] = value[: _LIMITS.get(target, 250)]
        except ValueError as exc:
            return None, {"column": column, "value": value, "message": str(exc)}
    if "name" in rec:
        name = rec.pop("name")
        if not rec.get("first_name") and not rec.get("last_name"):
            rec["first_name"], rec["last_name"] = split_name(name)
    if ctx.defs or custom:
        try:
            rec["custom"] = customfields.validate_values(
                list(ctx.defs.values()), custom, require_all=True
            )
        except ValidationFailed as exc:
            first = (exc.extra.get("errors") or [{}])[0]
            key = str(first.get("loc", ["", "", "custom"])[-1])
            return None, {
                "column": key,
                "value": str(custom.get(key, "")),
                "message": f"custom field {key}: {first.get('msg', exc.detail)}",
            }
    if not any(rec.get(k) for k in ("first_name", "last_name", "email", "phone", "company")):
        return None, {
            "column": None,
            "value": None,
            "message": "the row has no name, email, phone or company",
        }
    return rec, None


def _context(rec: dict[str, Any], ctx: _Ctx) -> LeadContext:
    return LeadContext(
        first_name=rec.get("first_name"),
        last_name=rec.get("last_name"),
        company=rec.get("company"),
        email=rec.get("email"),
        phone=rec.get("phone"),
        channel=rec.get("channel"),
        status=rec.get("raw_status") or rec.get("status"),
        notes=rec.get("notes"),
        disg_type=rec.get("disg_type"),
        last_contacted_at=rec.get("last_contacted_at"),
        created_at=ctx.now,
    )


def _finish(rec: dict[str, Any], analysis: Any, ctx: _Ctx) -> dict[str, Any]:
    """Apply the analysis (explicit values from the file win)."""
    rec.pop("raw_status", None)
    status = rec.get("status") or ctx.options.default_status
    if analysis is not None:
        if not status and analysis.status in ctx.stages.values():
            status = analysis.status
        rec["needs_action"] = analysis.needs_action
        rec["next_action_at"] = analysis.next_action_at
        rec["next_action_description"] = analysis.next_action_description
        rec.setdefault("score", analysis.score)
        rec["analyzed_at"] = ctx.now
    else:
        rec["needs_action"] = rec.get("last_contacted_at") is None
    rec["status"] = status or ctx.first_stage
    first, last = rec.get("first_name"), rec.get("last_name")
    rec["full_name"] = " ".join(p for p in (first, last) if p)
    rec["search_text"] = " ".join(
        p for p in (rec["full_name"], rec.get("email"), rec.get("phone"), rec.get("company")) if p
    ).lower()
    return rec


async def _context_for(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    options: ImportOptions,
    headers: list[str],
) -> _Ctx:
    org_id = actor.organization_id
    stages = await repository.pipeline_stages(session, org_id)
    if not stages:
        raise Conflict("The organisation has no pipeline stages", code="no_stages")
    stage_map: dict[str, str] = {}
    for s in stages:
        stage_map[parsing.header_key(s.key)] = s.key
        stage_map[parsing.header_key(s.name)] = s.key
    if options.default_status and options.default_status not in {s.key for s in stages}:
        raise ValidationFailed(
            f"Unknown default_status '{options.default_status}'", field="default_status"
        )
    defs = {d.key: d for d in await customfields.list_fields(session, org_id)}
    for d in defs.values():
        # The reader thread validates with these: detached, a rollback cannot expire them
        # into a lazy load from that thread.
        session.expunge(d)
    custom_keys = {parsing.header_key(d.key): d.key for d in defs.values()}
    custom_keys.update({parsing.header_key(d.label): d.key for d in defs.values()})
    plan = parsing.plan_columns(headers, custom_keys, options.mapping)
    org = await session.get(Organization, org_id)
    calendar = BusinessCalendar.from_dict((org.settings or {}).get("calendar") if org else None)
    if not any(t in parsing.IDENTITY_FIELDS for t in plan.targets):
        raise FileProblem(
            "No name, email or phone column found (headers: " + ", ".join(headers[:20]) + ")"
        )
    return _Ctx(
        actor=actor,
        org_id=org_id,
        user_id=actor.user_id,
        settings=settings,
        options=options,
        stages=stage_map,
        first_stage=stages[0].key,
        defs=defs,
        plan=plan,
        headers=headers,
        tz=ZoneInfo(calendar.timezone),
    )


_DATETIME_FIELDS = frozenset({"next_action_at", "last_contacted_at", "analyzed_at", "sla_met_at"})


def _plain(value: Any) -> Any:
    """A JSON-ready copy (datetimes as ISO text, ids as strings), as before-images store them."""
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    )


async def _update(
    session: AsyncSession,
    ctx: _Ctx,
    batch_id: uuid.UUID | None,
    updates: list[tuple[uuid.UUID, dict[str, Any]]],
) -> int:
    """Apply the file's non-empty values to existing leads through the leads service; keep
    the first before-image of each lead in this batch for undo. How many leads changed."""
    if not updates:
        return 0
    values = [
        (lead_id, {k: v for k, v in rec.items() if not (k == "status" and rec.get("_keep_status"))})
        for lead_id, rec in updates
    ]
    done = await bulk.update_records(
        session, ctx.actor, values, now=utcnow(), reason="import", fill=True
    )
    if batch_id is not None and done:
        known = await repository.updated_lead_ids(session, batch_id, [u.lead_id for u in done])
        await repository.insert_rows(
            session,
            ImportUpdate,
            [
                {"batch_id": batch_id, "lead_id": u.lead_id, "before": _plain(u.before)}
                for u in done
                if u.lead_id not in known
            ],
        )
    return len(done)


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
    ctx = await _context_for(session, actor, settings, options, header)
    report = Report(ignored_columns=ctx.plan.ignored)
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

    def __init__(self, ctx: _Ctx, rows: Iterator[list[Any]], *, skip: int) -> None:
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
            rec, err = _build(self.ctx, values)
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
    ctx: _Ctx,
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
                        "code": "duplicate_out_of_scope",
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
        await analyze_leads([_context(r, ctx) for r in todo], now=ctx.now)
        if ctx.options.analyze
        else [None] * len(todo)
    )
    for rec, analysis in zip(todo, analyses, strict=True):
        _finish(rec, analysis, ctx)
        if rec["needs_action"]:
            report.needs_action_count += 1
        if rec.get("last_contacted_at") is None:
            report.without_last_contact_count += 1
    batch_id = batch.id if batch is not None else None
    for rec in inserts:
        rec["assignee_id"] = ctx.options.assignee_id
    report.imported_count += len(inserts)
    report.error_count += len(errors)
    for row_no, err, _ in errors:
        if len(report.errors) < MAX_REPORTED_ERRORS:
            report.errors.append({"row": row_no, "code": err.get("code", "invalid_value"), **err})
    if ctx.options.dry_run:
        report.updated_count += len(updates)
        return
    before_write()
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
    updated = await _update(session, ctx, batch_id, updates)
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
                        "code": err.get("code", "invalid_value"),
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


# ---- batches --------------------------------------------------------------------------------


def estimate_rows(source: Source, settings: Settings | None = None) -> int:
    """Rows of a source, to choose between synchronous and background processing.

    CSV counts line ends and XLSX counts non-empty rows, both streaming over the file (an
    XLSX over the cell limit raises `XlsxTooLarge` here, before anything is written).
    """
    if source.fmt == "csv":
        return sum(c.count(b"\n") for c in source.chunks())
    if source.fmt == "json":
        data = parsing.load_json(b"".join(source.chunks()))
        return len(data) if isinstance(data, list) else 0
    _, rows = open_rows(source, settings)
    return sum(1 for r in rows if any(v is not None and v != "" for v in r))


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
    if options.assignee_id is not None and not await users.is_active_member(
        session, actor.organization_id, options.assignee_id
    ):
        raise ValidationFailed(
            "assignee_id must be an active user of this organisation", field="assignee_id"
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


async def _spool(session: AsyncSession, batch_id: uuid.UUID) -> Path:
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


def _lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.import_lease_seconds)


def batch_actor(batch: ImportBatch, importer: User | None = None) -> Actor:
    """The importer as a background run acts: their organisation, user and row scope.

    With the importer's current row, the narrower of the recorded scope and today's role
    applies and their current team: a demotion during a long import takes effect at once.
    """
    # Batches from before scopes were recorded keep the organisation-wide behaviour.
    scope = RowScope(batch.row_scope or RowScope.ORG.value)
    team_id = batch.team_id
    if importer is not None:
        scope = narrower_scope(scope, RowScope(importer.role.row_scope))
        team_id = importer.team_id
    return Actor(
        organization_id=batch.organization_id,
        user_id=batch.created_by,
        role="import",
        permissions=frozenset({"imports:write"}),
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
        token = await repository.claim_batch(session, batch_id, utcnow(), _lease(ctx.settings))
        await session.commit()
    return token


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
            path = await _spool(session, bid)
    try:
        return await run_claimed(
            ctx, bid, token, file_chunks(path), open_file=lambda: path.open("rb")
        )
    finally:
        path.unlink(missing_ok=True)


async def run_claimed(
    ctx: JobContext,
    bid: uuid.UUID,
    token: str,
    chunks: Callable[[], Iterator[bytes]],
    *,
    open_file: Callable[[], BinaryIO] | None = None,
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
            )
        except ImportFenced:
            await session.rollback()
            log.warning("import %s: claimed by another worker; this run stopped", bid)
            return "fenced"
        except FileProblem as exc:
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


@job("imports.resume")
async def resume_job(ctx: JobContext) -> int:
    """Restart background imports whose worker died (lease expired)."""
    cutoff = utcnow() - _lease(ctx.settings)
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


def _typed(before: dict[str, Any]) -> dict[str, Any]:
    """A stored before-image with its datetimes parsed back."""
    return {
        k: datetime.fromisoformat(v) if k in _DATETIME_FIELDS and v else v
        for k, v in before.items()
    }


async def undo(session: AsyncSession, actor: Actor, batch_id: uuid.UUID) -> ImportBatch:
    """Remove the leads the batch created and restore the fields it overwrote."""
    batch = await get_batch(session, actor, batch_id)
    if batch.status not in ("completed", "failed"):
        raise Conflict(
            f"Only finished imports can be undone (this one is {batch.status})",
            code="import_not_finished",
        )
    now = utcnow()
    # Through the leads service, and only leads the caller may change today: a lead
    # reassigned out of their scope since the import is neither removed nor restored (it is
    # counted as skipped).
    removed = await bulk.delete_where(
        session,
        actor,
        Lead.import_batch_id == batch.id,
        now=now,
        reason="import undone",
        audit_resource=("import", batch.id),
    )
    updates = await repository.import_updates(session, batch.id)
    restored = await bulk.update_records(
        session,
        actor,
        [(u.lead_id, _typed(u.before)) for u in updates],
        now=now,
        reason="import undone",
        fill=False,
    )
    await repository.delete_import_updates(session, batch.id)
    batch.status = "undone"
    batch.undone_at = now
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="import.undo",
        resource_type="import",
        resource_id=batch.id,
        after={
            "removed_leads": len(removed),
            "restored_leads": len(restored),
            "skipped_updates": len(updates) - len(restored),
        },
    )
    return batch


def headers_of(source: Source) -> list[str]:
    """Just the header of a source."""
    return open_rows(source)[0]


__all__ = ["FileProblem", "ImportOptions", "Report", "Source"]


async def preflight(
    session: AsyncSession, actor: Actor, settings: Settings, source: Source, options: ImportOptions
) -> None:
    """Reject whole-file problems (unreadable, empty, no identity column) before any write."""
    header, rows = open_rows(source, settings)
    await _context_for(session, actor, settings, options, header)
    if next(rows, None) is None:
        raise FileProblem("The file has a header but no rows")


async def _imported_entries(
    session: AsyncSession, lead_id: uuid.UUID, n: int
) -> list[TimelineEntry]:
    row = await repository.imported_from(session, lead_id)
    if row is None or n < 1:
        return []
    batch_id, created_at, created_by, filename = row
    summary = f"Imported from {filename}" if filename else "Imported"
    return [
        TimelineEntry(
            kind="imported",
            occurred_at=created_at,
            actor_user_id=created_by,
            summary=summary,
            data={"import_batch_id": str(batch_id)},
            id=f"imported:{lead_id}",
        )
    ]


async def _imported_count(session: AsyncSession, lead_id: uuid.UUID) -> int:
    return len(await _imported_entries(session, lead_id, 1))


# Leads created by an import show it in their timeline (imports write no per-lead history).
register_source(TimelineSource("imported", _imported_entries, _imported_count))
