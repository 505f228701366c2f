"""Reports: build and save definitions, run them into files, schedule and mail them.

Ownership: a saved report, its schedules and its runs belong to the user who created them;
only that user sees them (another user's or another organisation's id is a 404). A run reads
the leads its owner may see at the time it runs: an export the caller's row scope, a scheduled
run the owner's current role and scope (a schedule whose owner is no longer active, or may no
longer read reports, fails its run and pauses).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import delete_recorded, record, record_create, record_update, snapshot
from leadflow.auth.errors import PersonRequired
from leadflow.auth.service import actor_for_user
from leadflow.authz.actor import Actor
from leadflow.calendar.organization import calendar_of
from leadflow.config import Settings
from leadflow.db.dialect import dialect_name
from leadflow.db.engine import transactions_that
from leadflow.exceptions import LeadflowError, NotFound, ValidationFailed
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.models.report import Report, ReportRun, ReportSchedule
from leadflow.models.user import User
from leadflow.notifications import service as notifications
from leadflow.notifications.attachments import AttachmentRef
from leadflow.reports import files, links, repository
from leadflow.reports.builder import Compiled, check, compile_report, jsonable
from leadflow.reports.catalogue import (
    AGGREGATIONS,
    FIELDS,
    OPERATOR_HELP,
    OPERATORS,
    TEMPLATES,
    Context,
    aggregation_applies,
)
from leadflow.reports.errors import (
    DownloadNotAllowed,
    IntegrationRequired,
    RecipientsNotMembers,
    ReportTooLarge,
    TooManySchedules,
)
from leadflow.reports.schedules import next_run, valid_timezone
from leadflow.reports.schemas import (
    BuildIn,
    BuildOut,
    CatalogueRead,
    ColumnRead,
    Definition,
    ExportOut,
    FieldRead,
    OperatorRead,
    ReportRead,
    RunRead,
    ScheduleIn,
    ScheduleRead,
    TemplateRead,
)
from leadflow.users import repository as members

log = logging.getLogger("leadflow.reports")

DOWNLOAD_PATH = "/api/v1/reports/downloads/"
ATTACHMENT_SOURCE = "report_run"
FILE_CHUNK_BYTES = 1 << 20
_BATCH = 1000


# --- catalogue -----------------------------------------------------------------------------


def catalogue() -> CatalogueRead:
    """The published fields, aggregations and filter operators."""
    return CatalogueRead(
        fields=[
            FieldRead(
                key=f.key,
                label=f.label,
                type=f.type,
                description=f.description,
                aggregations=[a for a in AGGREGATIONS if aggregation_applies(a, f.type)],
                operators=[op for op, types in OPERATORS.items() if f.type in types],
                values=list(f.values) if f.values else None,
            )
            for f in FIELDS
        ],
        aggregations=dict(AGGREGATIONS),
        operators=[OperatorRead(op=op, description=OPERATOR_HELP[op]) for op in OPERATORS],
    )


def templates() -> list[TemplateRead]:
    """The ready-made reports."""
    return [
        TemplateRead(
            id=t.id,
            name=t.name,
            description=t.description,
            fields=list(t.fields),
            filters=[dict(f) for f in t.filters],
            grouping=list(t.grouping),
            sorting=[dict(s) for s in t.sorting],
            aggregations=[dict(a) for a in t.aggregations],
        )
        for t in TEMPLATES
    ]


# --- saved reports -------------------------------------------------------------------------


def _owner(actor: Actor) -> uuid.UUID:
    if actor.user_id is None:
        raise PersonRequired("Reports belong to a user; this API key has no user")
    return actor.user_id


def report_read(report: Report) -> ReportRead:
    """A saved report as the API shows it."""
    return ReportRead(
        id=report.id,
        name=report.name,
        created_at=report.created_at,
        updated_at=report.updated_at,
        **Definition.model_validate(report.definition).model_dump(by_alias=True),
    )


async def _context(session: AsyncSession, organization_id: uuid.UUID, now: datetime) -> Context:
    calendar = await calendar_of(session, organization_id)
    return Context(timezone=calendar.timezone, dialect=dialect_name(session), now=now)


async def _compiled(
    session: AsyncSession, actor: Actor, definition: Definition, now: datetime
) -> Compiled:
    checked = check(definition)
    return compile_report(checked, actor, await _context(session, actor.organization_id, now))


async def preview(
    session: AsyncSession, actor: Actor, settings: Settings, definition: Definition
) -> tuple[list[ColumnRead], list[dict[str, Any]], int]:
    """A definition's columns, first rows and row count in the actor's scope (nothing saved)."""
    compiled = await _compiled(session, actor, definition, utcnow())
    row_count = int(await session.scalar(compiled.count()) or 0)
    result = await session.execute(compiled.rows.limit(settings.report_preview_rows))
    rows = [
        {c.key: jsonable(v, c) for c, v in zip(compiled.columns, row, strict=True)}
        for row in result.all()
    ]
    columns = [ColumnRead(key=c.key, label=c.label, type=c.type) for c in compiled.columns]
    return columns, rows, row_count


async def build(session: AsyncSession, actor: Actor, settings: Settings, body: BuildIn) -> BuildOut:
    """Check and save a report; answer its first rows and its row count (in the actor's scope)."""
    owner = _owner(actor)
    definition = Definition.model_validate(body.model_dump(exclude={"name"}, by_alias=True))
    columns, rows, row_count = await preview(session, actor, settings, definition)
    report = Report(
        organization_id=actor.organization_id,
        owner_id=owner,
        name=body.name,
        definition=definition.model_dump(mode="json", by_alias=True),
    )
    session.add(report)
    await session.flush()
    await record_create(session, actor, report, "report.create", "report")
    return BuildOut(
        report_id=report.id,
        name=report.name,
        columns=columns,
        preview_data=rows,
        row_count=row_count,
    )


async def get_report(session: AsyncSession, actor: Actor, report_id: uuid.UUID) -> Report:
    """One of the actor's reports, or 404."""
    report = await repository.get_report(session, actor, report_id)
    if report is None:
        raise NotFound("Report not found")
    return report


async def list_reports(
    session: AsyncSession, actor: Actor, page: PageParams
) -> tuple[list[Report], int]:
    """The actor's saved reports, newest first."""
    return await repository.list_reports(session, actor, page)


async def delete_report(session: AsyncSession, actor: Actor, report_id: uuid.UUID) -> None:
    """Delete a report with its schedules, runs and files."""
    report = await get_report(session, actor, report_id)
    await delete_recorded(session, actor, report, "report.delete", "report")


# --- runs and files ------------------------------------------------------------------------


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:60]
    return slug or "report"


def _file_name(report: Report, fmt: str, ctx: Context) -> str:
    day = ctx.now.astimezone(ZoneInfo(ctx.timezone)).date().isoformat()
    return f"{_slug(report.name)}-{day}.{fmt}"


async def _batches(session: AsyncSession, rows: Select[Any]) -> AsyncIterator[Sequence[Any]]:
    result = await session.stream(rows.execution_options(yield_per=_BATCH))
    async for part in result.partitions():
        yield part


@dataclass(frozen=True)
class Rendered:
    """A report's file in a local temporary file, ready to store with its run."""

    path: Path
    row_count: int
    file_name: str
    content_type: str
    duration_ms: int


async def render(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    report: Report,
    fmt: str,
    now: datetime,
) -> Rendered:
    """Run `report` as `actor` into a local `fmt` file. Only reads: the caller runs it in a
    read-only transaction, so on SQLite no write lock is held while a large file is made."""
    started = time.perf_counter()
    definition = Definition.model_validate(report.definition)
    ctx = await _context(session, actor.organization_id, now)
    compiled = compile_report(check(definition), actor, ctx)
    total = int(await session.scalar(compiled.count()) or 0)
    if total > settings.report_max_rows:
        raise ReportTooLarge(
            f"The report has {total:,} rows; at most {settings.report_max_rows:,} can be "
            "exported at once. Add filters, or group the rows.",
            row_count=total,
            max_rows=settings.report_max_rows,
        )
    if fmt == "csv":
        written = await files.write_csv(compiled.columns, _batches(session, compiled.rows))
    elif fmt == "xlsx":
        written = await files.write_xlsx(
            compiled.columns, _batches(session, compiled.rows), report.name
        )
    else:
        scope = "your leads" if actor.row_scope.value == "own" else f"{actor.row_scope.value} scope"
        subtitle = (
            f"{total:,} rows · {now.astimezone(ZoneInfo(ctx.timezone)):%d.%m.%Y %H:%M} "
            f"({ctx.timezone}) · {scope}"
        )
        # The table shows at most `report_pdf_max_rows`: read no more than those.
        written = await files.write_pdf(
            compiled.columns,
            _batches(session, compiled.rows.limit(settings.report_pdf_max_rows)),
            title=report.name,
            subtitle=subtitle,
            max_rows=settings.report_pdf_max_rows,
            total=total,
        )
    return Rendered(
        path=written.path,
        row_count=written.row_count,
        file_name=_file_name(report, fmt, ctx),
        content_type=files.CONTENT_TYPES[fmt],
        duration_ms=round((time.perf_counter() - started) * 1000),
    )


@asynccontextmanager
async def rendered_read_only(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    report: Report,
    fmt: str,
    now: datetime,
) -> AsyncIterator[Rendered]:
    """`render` in a read-only transaction of its own (the session's open transaction is
    committed first); the temporary file is removed when the block ends."""
    await session.commit()
    with transactions_that(write=False):
        try:
            rendered = await render(session, settings, actor, report, fmt, now)
        finally:
            # End the read transaction here: the caller's next one may write.
            await session.commit()
    try:
        yield rendered
    finally:
        rendered.path.unlink(missing_ok=True)


async def store(
    session: AsyncSession, settings: Settings, run: ReportRun, rendered: Rendered, now: datetime
) -> None:
    """Store a rendered file with its run and complete the run (status, row count, duration,
    file, until when it is kept)."""
    size = await _store(session, run.id, rendered.path)
    run.status = "succeeded"
    run.row_count = rendered.row_count
    run.duration_ms = rendered.duration_ms
    run.file_name = rendered.file_name
    run.content_type = rendered.content_type
    run.size_bytes = size
    run.file_stored = True
    run.expires_at = now + timedelta(hours=settings.report_file_retention_hours)
    run.finished_at = utcnow()  # `now` is when the run started
    await session.flush()


async def _store(session: AsyncSession, run_id: uuid.UUID, path: Any) -> int:
    # One piece in memory at a time, flushed as it goes.
    size, seq = 0, 0
    with path.open("rb") as fh:
        while piece := fh.read(FILE_CHUNK_BYTES):
            await repository.add_chunks(session, run_id, [piece], seq)
            size += len(piece)
            seq += 1
    return size


def download_link(settings: Settings, run: ReportRun, now: datetime) -> tuple[str, datetime] | None:
    """A fresh signed link to a run's stored file and its expiry, or None if no file is kept."""
    if not run.file_stored or run.expires_at is None or run.expires_at <= now:
        return None
    expires = links.expiry_of(
        min(now + timedelta(hours=settings.report_link_hours), run.expires_at)
    )
    if expires <= now:
        return None
    token = links.sign(settings.resolved_secret_key(), run.id, expires)
    return f"{settings.public_url.rstrip('/')}{DOWNLOAD_PATH}{token}", expires


def _no_sheets(fmt: str) -> None:
    if fmt == "sheets":
        raise IntegrationRequired(
            "Google Sheets needs the Google Sheets integration, which is not set up; "
            "use csv, xlsx or pdf",
            integration="google_sheets",
        )


async def export(
    session: AsyncSession, actor: Actor, settings: Settings, report_id: uuid.UUID, fmt: str
) -> ExportOut:
    """Run a saved report into a file now and answer a signed download link."""
    _no_sheets(fmt)
    report = await get_report(session, actor, report_id)
    owner = _owner(actor)
    now = utcnow()
    # The file is made without the write lock; the run and its file are then inserted in
    # one short write transaction (a run that fails leaves nothing behind, as before).
    async with rendered_read_only(session, settings, actor, report, fmt, now) as rendered:
        run = ReportRun(
            organization_id=actor.organization_id,
            report_id=report.id,
            owner_id=owner,
            trigger="export",
            format=fmt,
            status="running",
            created_at=now,
        )
        session.add(run)
        await session.flush()
        await store(session, settings, run, rendered, now)
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="report.export",
        resource_type="report",
        resource_id=report.id,
        after={"run_id": str(run.id), "format": fmt, "row_count": run.row_count},
    )
    link = download_link(settings, run, now)
    assert link is not None and run.file_name is not None and run.row_count is not None
    return ExportOut(
        run_id=run.id,
        download_url=link[0],
        expires_at=link[1],
        file_name=run.file_name,
        row_count=run.row_count,
    )


@dataclass(frozen=True)
class Download:
    """A stored file ready to stream."""

    run_id: uuid.UUID
    file_name: str
    content_type: str
    size_bytes: int


async def open_download(session: AsyncSession, settings: Settings, token: str) -> Download:
    """The file a signed link names (403 if the link is altered or expired, or its run's
    owner is no longer active or may no longer read reports and export leads; 404 if the
    file is no longer kept)."""
    run_id = links.verify(settings.resolved_secret_key(), token, utcnow())
    run = await session.get(ReportRun, run_id)
    if run is None or not run.file_stored or run.file_name is None:
        raise NotFound("The file is no longer available; export the report again")
    owner = await members.get_with_role(session, run.owner_id)
    actor = actor_for_user(owner) if owner is not None and owner.status == "active" else None
    if actor is None or not (actor.can("reports:read") and actor.can("leads:export")):
        raise DownloadNotAllowed(
            "The person this file was made for may no longer export reports; "
            "the link no longer works"
        )
    return Download(
        run.id, run.file_name, run.content_type or "application/octet-stream", run.size_bytes or 0
    )


async def file_chunks(
    factory: Callable[[], AsyncSession], run_id: uuid.UUID
) -> AsyncIterator[bytes]:
    """A stored file, piece by piece, each read in a short read-only transaction."""
    with transactions_that(write=False):
        async with factory() as session:
            seqs = await repository.chunk_seqs(session, run_id)
    for seq in seqs:
        with transactions_that(write=False):
            async with factory() as session:
                piece = await repository.chunk(session, run_id, seq)
        if piece is not None:
            yield piece


async def file_bytes(session: AsyncSession, ref: str) -> bytes | None:
    """A run's whole stored file (for an email attachment), or None when it is gone."""
    run_id = uuid.UUID(ref)
    seqs = await repository.chunk_seqs(session, run_id)
    if not seqs:
        return None
    pieces = [await repository.chunk(session, run_id, seq) for seq in seqs]
    return b"".join(p for p in pieces if p is not None)


async def history(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    report_id: uuid.UUID | None,
    page: PageParams,
) -> tuple[list[RunRead], int]:
    """The actor's runs, newest first, each with a fresh download link while its file is kept."""
    if report_id is not None:
        await get_report(session, actor, report_id)
    runs, total = await repository.list_runs(session, actor, page, report_id)
    now = utcnow()
    items = []
    for run in runs:
        link = download_link(settings, run, now)
        items.append(
            RunRead(
                id=run.id,
                report_id=run.report_id,
                schedule_id=run.schedule_id,
                trigger=run.trigger,
                format=run.format,
                status=run.status,
                row_count=run.row_count,
                duration_ms=run.duration_ms,
                error=run.error,
                created_at=run.created_at,
                finished_at=run.finished_at,
                download_url=link[0] if link else None,
                expires_at=link[1] if link else None,
            )
        )
    return items, total


# --- schedules -----------------------------------------------------------------------------


def schedule_read(row: ReportSchedule) -> ScheduleRead:
    """A schedule as the API shows it."""
    return ScheduleRead(
        id=row.id,
        report_id=row.report_id,
        frequency=row.frequency,
        time=row.time_of_day,
        timezone=row.timezone,
        day_of_week=row.day_of_week,
        day_of_month=row.day_of_month,
        recipients=list(row.recipients),
        format=row.format,
        status=row.status,
        next_run=row.next_run,
        last_run_at=row.last_run_at,
        created_at=row.created_at,
    )


def _next(row: ReportSchedule, after: datetime) -> datetime:
    return next_run(
        frequency=row.frequency,
        time_of_day=row.time_of_day,
        timezone=row.timezone,
        day_of_week=row.day_of_week,
        day_of_month=row.day_of_month,
        after=after,
    )


async def _member(session: AsyncSession, organization_id: uuid.UUID, email: str) -> User | None:
    """The active member of the organisation with this email, or None."""
    user = await members.get_by_email(session, email)
    if user is None or user.organization_id != organization_id or user.status != "active":
        return None
    return user


async def create_schedule(
    session: AsyncSession, actor: Actor, settings: Settings, body: ScheduleIn
) -> ReportSchedule:
    """Schedule one of the actor's reports; its first due time is the next one from now.
    Recipients must be active members of the actor's organisation: a schedule mails lead
    data, which must not leave the organisation."""
    _no_sheets(body.format)
    report = await get_report(session, actor, body.report_id)
    recipients = sorted({str(r).lower() for r in body.recipients})
    outside = [r for r in recipients if await _member(session, actor.organization_id, r) is None]
    if outside:
        raise RecipientsNotMembers(
            "Reports can only be mailed to active members of your organisation; "
            f"not members: {', '.join(outside)}",
            recipients=outside,
        )
    if (
        await repository.count_own_schedules(session, actor)
        >= settings.report_max_schedules_per_user
    ):
        raise TooManySchedules(
            f"You already have {settings.report_max_schedules_per_user} schedules; "
            "delete one before adding another",
            max_schedules=settings.report_max_schedules_per_user,
        )
    tz = body.timezone or (await calendar_of(session, actor.organization_id)).timezone
    if not valid_timezone(tz):
        raise ValidationFailed(f"Unknown time zone {tz!r}", field="timezone")
    row = ReportSchedule(
        organization_id=actor.organization_id,
        report_id=report.id,
        owner_id=_owner(actor),
        frequency=body.frequency,
        time_of_day=body.time,
        timezone=tz,
        day_of_week=(body.day_of_week or 1) if body.frequency == "weekly" else None,
        day_of_month=(body.day_of_month or 1) if body.frequency == "monthly" else None,
        recipients=recipients,
        format=body.format,
        status="active",
    )
    row.next_run = _next(row, utcnow())
    session.add(row)
    await session.flush()
    await record_create(session, actor, row, "report_schedule.create", "report_schedule")
    return row


async def get_schedule(
    session: AsyncSession, actor: Actor, schedule_id: uuid.UUID
) -> ReportSchedule:
    """One of the actor's schedules, or 404."""
    row = await repository.get_schedule(session, actor, schedule_id)
    if row is None:
        raise NotFound("Schedule not found")
    return row


async def list_schedules(
    session: AsyncSession, actor: Actor, page: PageParams, report_id: uuid.UUID | None
) -> tuple[list[ReportSchedule], int]:
    """The actor's schedules, newest first."""
    return await repository.list_schedules(session, actor, page, report_id)


async def set_schedule_status(
    session: AsyncSession, actor: Actor, schedule_id: uuid.UUID, status: str
) -> ReportSchedule:
    """Pause or resume; a resumed schedule is next due at its next time from now (the times
    it missed while paused are not made up)."""
    row = await get_schedule(session, actor, schedule_id)
    if row.status == status:
        return row
    before = snapshot(row)
    row.status = status
    if status == "active":
        row.next_run = _next(row, utcnow())
    await session.flush()
    await record_update(session, actor, row, before, "report_schedule.update", "report_schedule")
    return row


async def delete_schedule(session: AsyncSession, actor: Actor, schedule_id: uuid.UUID) -> None:
    """Delete a schedule (its past runs stay in the history)."""
    row = await get_schedule(session, actor, schedule_id)
    await delete_recorded(session, actor, row, "report_schedule.delete", "report_schedule")


async def due_schedules(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[uuid.UUID, datetime]]:
    """Active schedules due at `now`: (id, due time)."""
    return await repository.due_schedules(session, now, limit)


async def claim_schedule(
    session: AsyncSession, schedule_id: uuid.UUID, due_at: datetime, now: datetime
) -> uuid.UUID | None:
    """Take the run of a schedule for its due time `due_at`: move the schedule on to its next
    time after now and add a running run; the new run's id, or None if another worker took
    it (or the schedule changed meanwhile). Due times missed while no worker ran are not
    made up: one run, then the next time from now."""
    row = await session.get(ReportSchedule, schedule_id)
    if row is None or row.status != "active":
        return None
    if not await repository.claim_due(
        session, schedule_id, due_at, _next(row, max(now, due_at)), now
    ):
        return None
    run = ReportRun(
        organization_id=row.organization_id,
        report_id=row.report_id,
        schedule_id=row.id,
        owner_id=row.owner_id,
        trigger="schedule",
        format=row.format,
        status="running",
        due_at=due_at,
        created_at=now,
    )
    session.add(run)
    await session.flush()
    return run.id


async def execute_scheduled(
    session: AsyncSession, settings: Settings, run_id: uuid.UUID, now: datetime
) -> str:
    """Produce a claimed scheduled run as its owner and mail it to the schedule's recipients
    (through the outbox, the file attached up to `report_attachment_max_bytes`)."""
    # Everything up to the file only reads: on SQLite the write lock is taken afterwards, for
    # storing the file and queueing the emails.
    with transactions_that(write=False):
        run = await session.get(ReportRun, run_id)
        if run is None or run.status != "running":
            return "skipped"
        claimed_at = run.created_at  # the claim this worker holds (a take-over re-stamps it)
        report = await session.get(Report, run.report_id)
        schedule = await session.get(ReportSchedule, run.schedule_id) if run.schedule_id else None
        owner = await members.get_with_role(session, run.owner_id)
    if report is None or schedule is None:
        await session.commit()
        return await _fail(session, run, "The report or its schedule was deleted")
    actor = actor_for_user(owner) if owner is not None and owner.status == "active" else None
    if (
        owner is None
        or actor is None
        or not actor.can("reports:read")
        or not actor.can("leads:export")
    ):
        await session.commit()
        schedule.status = "paused"
        return await _fail(
            session,
            run,
            "The schedule's owner is no longer active or may not read reports or export "
            "leads; the schedule was paused",
        )
    async with rendered_read_only(session, settings, actor, report, run.format, now) as rendered:
        # The final write starts with the run itself: a worker whose run was taken over (it
        # looked dead) or already finished stops here, so the emails are queued once.
        if not await repository.hold_run(session, run.id, claimed_at):
            await session.rollback()
            return "skipped"
        run.error = None
        await store(session, settings, run, rendered, now)
    return await _mail(session, settings, run, report, schedule, now)


async def _mail(
    session: AsyncSession,
    settings: Settings,
    run: ReportRun,
    report: Report,
    schedule: ReportSchedule,
    now: datetime,
) -> str:
    link = download_link(settings, run, now)
    assert link is not None and run.file_name is not None and run.content_type is not None
    attach = (run.size_bytes or 0) <= settings.report_attachment_max_bytes
    ref = AttachmentRef(run.file_name, run.content_type, ATTACHMENT_SOURCE, str(run.id))
    expires_local = (
        f"{link[1].astimezone(ZoneInfo(schedule.timezone)):%d.%m.%Y %H:%M} ({schedule.timezone})"
    )
    skipped: list[str] = []
    for recipient in schedule.recipients:
        # Re-checked at every run: someone who left the organisation gets no more lead data.
        member = await _member(session, run.organization_id, recipient)
        if member is None:
            skipped.append(recipient)
            continue
        digest = hashlib.sha256(recipient.encode()).hexdigest()[:16]
        await notifications.queue_email(
            session,
            organization_id=run.organization_id,
            to=recipient,
            template="report_ready",
            language=member.language,
            context={
                "recipient_name": member.full_name,
                "report_name": report.name,
                "row_count": run.row_count,
                "download_url": link[0],
                "expires_local": expires_local,
                "attached": attach,
            },
            delivery_key=f"report-run:{run.id}:{digest}",
            max_attempts=settings.outbox_max_attempts,
            attachments=[ref] if attach else None,
        )
    if skipped:
        run.error = (
            "Not mailed to recipients who are no longer active members: " + ", ".join(skipped)
        )[:2000]
        await session.flush()
    return run.status


async def _fail(session: AsyncSession, run: ReportRun, error: str) -> str:
    run.status = "failed"
    run.error = error[:2000]
    run.finished_at = utcnow()
    await session.flush()
    return "failed"


async def fail_run(session: AsyncSession, run_id: uuid.UUID, exc: BaseException) -> None:
    """Record that a run failed with `exc` (a known error's detail, else its type only)."""
    run = await session.get(ReportRun, run_id)
    if run is None or run.status != "running":
        return  # finished meanwhile (by a worker that took it over)
    detail = (
        exc.detail if isinstance(exc, LeadflowError) else f"Internal error ({type(exc).__name__})"
    )
    await _fail(session, run, detail)


async def cleanup_files(session: AsyncSession, now: datetime, limit: int) -> int:
    """Drop up to `limit` stored files past their retention; how many."""
    ids = await repository.expired_file_run_ids(session, now, limit)
    if ids:
        await repository.drop_files(session, ids)
    return len(ids)


async def stale_scheduled_runs(
    session: AsyncSession, now: datetime, lease: timedelta, limit: int
) -> list[uuid.UUID]:
    """Scheduled runs left `running` for `lease` (their worker died), not resumed yet."""
    return await repository.stale_scheduled_runs(session, now - lease, limit)


async def reclaim_run(
    session: AsyncSession, run_id: uuid.UUID, now: datetime, lease: timedelta
) -> bool:
    """Take over a stale scheduled run to run it again; False if another worker did."""
    return await repository.reclaim_run(session, run_id, now - lease, now)


async def fail_stale_runs(session: AsyncSession, now: datetime, lease: timedelta) -> int:
    """Runs left `running` for `lease` (their worker died) become failed; a scheduled one
    only after it was run again and interrupted again."""
    return await repository.fail_stale_runs(session, now - lease, now)
