"""From an uploaded file to lead records: opening a source, then building each row.

`open_rows` reads any source (CSV, JSON, XLSX) as header + rows; `load_context` gathers what
building needs (stages, custom fields, the column plan, the organisation's time zone) and
`build_record` / `finish_record` turn one row into a lead record before and after analysis.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, BinaryIO, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai.local import LeadContext, normalize_status
from leadflow.authz.actor import Actor
from leadflow.calendar.organization import calendar_of
from leadflow.config import Settings
from leadflow.customfields import service as customfields
from leadflow.exceptions import ValidationFailed
from leadflow.imports import parsing, repository
from leadflow.imports.options import ImportOptions
from leadflow.imports.parsing import FileProblem
from leadflow.kit.clock import utcnow
from leadflow.leads.service import split_name
from leadflow.models.custom_field import CustomFieldDefinition
from leadflow.pipeline.errors import NoStages

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
# Limits for callers without settings at hand (`headers_of`): the defaults, no environment.
_DEFAULT_SETTINGS = Settings.model_construct()


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


def headers_of(source: Source) -> list[str]:
    """Just the header of a source."""
    return open_rows(source)[0]


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


@dataclass
class ImportContext:
    """What building the rows of one import needs, and what it remembers across rows."""

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


def _stage_key(ctx: ImportContext, raw: str) -> str | None:
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


def build_record(
    ctx: ImportContext, values: list[Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
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


def lead_context(rec: dict[str, Any], ctx: ImportContext) -> LeadContext:
    """What the analysis sees of a built record."""
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


def finish_record(rec: dict[str, Any], analysis: Any, ctx: ImportContext) -> dict[str, Any]:
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
    return rec  # the leads service derives full name and search text


async def load_context(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    options: ImportOptions,
    headers: list[str],
) -> ImportContext:
    """The context for a file with `headers` (Conflict, ValidationFailed or FileProblem)."""
    org_id = actor.organization_id
    stages = await repository.pipeline_stages(session, org_id)
    if not stages:
        raise NoStages("The organisation has no pipeline stages")
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
    calendar = await calendar_of(session, org_id)
    if not any(t in parsing.IDENTITY_FIELDS for t in plan.targets):
        raise FileProblem(
            "No name, email or phone column found (headers: " + ", ".join(headers[:20]) + ")"
        )
    return ImportContext(
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
