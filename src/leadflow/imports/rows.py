"""From an uploaded file to lead records: opening a source, then building each row.

`open_rows` reads any source (CSV, JSON, XLSX) as header + rows; `load_context` gathers what
building needs (stages, custom fields, the column plan, the organisation's time zone) and
`build_record` / `finish_record` turn one row into a lead record before and after analysis.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, BinaryIO, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai.local import LeadContext
from leadflow.authz.actor import Actor
from leadflow.calendar.organization import calendar_of
from leadflow.config import Settings
from leadflow.customfields import service as customfields
from leadflow.customfields.errors import FieldExists
from leadflow.customfields.schemas import FieldCreate, FieldType
from leadflow.exceptions import ValidationFailed
from leadflow.imports import parsing, repository
from leadflow.imports.detect import scan_dates
from leadflow.imports.headers import OWNER, generated_label, mapping_targets
from leadflow.imports.options import ImportOptions
from leadflow.imports.owners import Member, OwnerResolver
from leadflow.imports.parsing import DatesAmbiguous, FileProblem
from leadflow.imports.stages import StageChoice, StageResolver
from leadflow.kit.clock import utcnow
from leadflow.leads.service import split_name
from leadflow.models.custom_field import CustomFieldDefinition
from leadflow.pipeline.errors import NoStages
from leadflow.users import repository as users

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
    path: Path | None = None  # the bytes as a local file, when they are one


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
    resolver: StageResolver
    tz: tzinfo = UTC  # dates without an offset are wall-clock times of the organisation
    owners: OwnerResolver | None = None
    # column -> DD/MM/YYYY or MM/DD/YYYY (dates with `/` or `-`); None: the value decides
    date_orders: dict[int, str | None] = field(default_factory=dict)
    date_columns: list[int] = field(default_factory=list)
    # custom fields the import defines when it fills them (key -> label), and those it did
    generated: dict[str, str] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    # Duplicate keys of this chunk, and of the one before (it may not be committed yet when
    # this chunk is matched against the database).
    # The keys are "e:<email>" and "p:<phone>": two chunks' worth is a few hundred kB.
    seen: set[str] = field(default_factory=set)
    seen_before: set[str] = field(default_factory=set)
    now: datetime = field(default_factory=utcnow)


# Secondary contact fields (custom): normalised like the lead's own, kept as text otherwise.
_PHONE_KEYS = re.compile(r"^(mobile|phone_\d|mobile_\d)$")
_EMAIL_KEYS = re.compile(r"^email_\d$")


def _extra_value(ctx: ImportContext, key: str, value: str) -> str:
    if _PHONE_KEYS.match(key):
        try:
            return parsing.phone_value(value, ctx.settings.default_phone_region) or value[:2000]
        except ValueError:
            return value[:2000]
    if _EMAIL_KEYS.match(key):
        return parsing.email_value(value) or value[:2000]
    return value[:2000]


def build_record(
    ctx: ImportContext, values: list[Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A lead record from one row, or an error {column, value, message}.

    Warnings about an imported row (an owner that names no user it may be given to) are
    listed under `_warnings` of the record.
    """
    rec: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    status: StageChoice | None = None
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
                    raw if not isinstance(raw, str) else value, ctx.tz, ctx.date_orders.get(i)
                )
            elif target == "status":
                choice = ctx.resolver.choose(value)
                if status is None:
                    status = choice
                    rec["raw_status"] = value
                elif ctx.resolver.combine(status.stage, choice.stage) != status.stage:
                    # A second status column (HubSpot: lifecycle stage and lead status).
                    status = choice
            elif target == OWNER:
                _owner(ctx, rec, column, value)
            elif target == "tags":
                rec["tags"] = parsing.tags_value(value)
            elif target == "disg_type":
                letter = value[:1].upper()
                if letter in "DISGC":
                    rec["disg_type"] = letter
            elif target == "score":
                number = float(value.replace(",", "."))
                # Checked as a float: "1e999" is no integer and "nan" compares false.
                if not 0 <= number <= 100:
                    raise ValueError("score must be between 0 and 100")
                rec["score"] = int(number)
            elif target.startswith("custom."):
                key = target[7:]
                if key in ctx.generated:
                    custom[key] = _extra_value(ctx, key, value)
                elif i in ctx.date_orders:
                    custom[key] = parsing.day_value(
                        raw if not isinstance(raw, str) else value, ctx.date_orders[i]
                    )
                else:
                    custom[key] = raw if not isinstance(raw, str) else value
            elif target == "notes":
                rec["notes"] = value[:20000]
            else:
                rec[target] = value[: _LIMITS.get(target, 250)]
        except ValueError as exc:
            return None, {"column": column, "value": value, "message": str(exc)}
    if status is not None and status.stage is not None:
        rec["status"] = status.stage
        # The analysis reads the default-table word ("contacted"), not "Working - …".
        rec["raw_status"] = status.canonical or rec["raw_status"]
    if "name" in rec:
        name = rec.pop("name")
        if not rec.get("first_name") and not rec.get("last_name"):
            rec["first_name"], rec["last_name"] = split_name(name)
    extras: dict[str, Any] = {}
    if custom and ctx.generated:
        extras = {k: custom.pop(k) for k in list(custom) if k in ctx.generated}
        mobile = extras.get("mobile")
        if not rec.get("phone") and mobile and mobile.startswith("+"):
            # A row without a phone number is reached on its (valid) mobile number.
            rec["phone"] = extras.pop("mobile")
    if ctx.defs or custom:
        try:
            rec["custom"] = customfields.validate_values(
                list(ctx.defs.values()), custom, require_all=True
            )
        except ValidationFailed as exc:
            first_error = (exc.extra.get("errors") or [{}])[0]
            key = str(first_error.get("loc", ["", "", "custom"])[-1])
            return None, {
                "column": key,
                "value": str(custom.get(key, "")),
                "message": f"custom field {key}: {first_error.get('msg', exc.detail)}",
            }
    if extras:
        rec["custom"] = {**rec.get("custom", {}), **extras}
    if not any(rec.get(k) for k in ("first_name", "last_name", "email", "phone", "company")):
        return None, {
            "column": None,
            "value": None,
            "message": "the row has no name, email, phone or company",
        }
    return rec, None


def _owner(ctx: ImportContext, rec: dict[str, Any], column: str, value: str) -> None:
    assert ctx.owners is not None
    choice = ctx.owners.choose(value)
    if choice.assignee is not None:
        rec["assignee_id"] = choice.assignee
    else:
        rec.setdefault("_warnings", []).append(
            {"column": column, "value": value, "message": choice.message, "code": choice.code}
        )


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
    *,
    require_identity: bool = True,
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
    keys = {s.key for s in stages}
    if options.default_status and options.default_status not in keys:
        raise ValidationFailed(
            f"Unknown default_status '{options.default_status}'", field="default_status"
        )
    bad = sorted(v for v in (options.status_map or {}).values() if v not in keys | {"", "ignore"})
    if bad:
        raise ValidationFailed(
            f"status_map names stages your pipeline lacks: {', '.join(bad[:10])}",
            field="status_map",
        )
    defs = {d.key: d for d in await customfields.list_fields(session, org_id)}
    for d in defs.values():
        # The reader thread validates with these: detached, a rollback cannot expire them
        # into a lazy load from that thread.
        session.expunge(d)
    _check_mapping(options.mapping, defs)
    custom_keys = {parsing.header_key(d.key): d.key for d in defs.values()}
    custom_keys.update({parsing.header_key(d.label): d.key for d in defs.values()})
    plan = parsing.plan_columns(headers, custom_keys, options.mapping)
    calendar = await calendar_of(session, org_id)
    if require_identity and not any(t in parsing.IDENTITY_FIELDS for t in plan.targets):
        raise FileProblem(
            "No name, email or phone column found (headers: " + ", ".join(headers[:20]) + ")"
        )
    generated: dict[str, str] = {}
    date_columns: list[int] = []
    for i, t in enumerate(plan.targets):
        if t is None:
            continue
        key = t[7:] if t.startswith("custom.") else None
        if key is not None and key not in defs:
            generated[key] = generated_label(key) or key
        if t == "last_contacted_at" or (key in defs and defs[key].type == "date"):
            date_columns.append(i)
    given = {parsing.header_key(k): v for k, v in (options.date_formats or {}).items()}
    date_orders = {i: given.get(parsing.header_key(headers[i])) for i in date_columns}
    owners = None
    if OWNER in plan.targets:
        members = [
            Member(uid, email, name)
            for uid, email, name in await users.active_members(session, org_id)
        ]
        owners = OwnerResolver(
            members, importer=actor.user_id, may_assign_others=actor.can("leads:assign")
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
        resolver=StageResolver(stages, options.status_map),
        tz=ZoneInfo(calendar.timezone),
        owners=owners,
        date_orders=date_orders,
        date_columns=date_columns,
        generated=generated,
    )


def _check_mapping(mapping: dict[str, str] | None, defs: dict[str, CustomFieldDefinition]) -> None:
    """Every target of `mapping` is a field, `owner`, a custom field or `ignore`."""
    allowed = mapping_targets()
    bad: list[str] = []
    for column, target in (mapping or {}).items():
        if target in allowed or target in ("", "ignore"):
            continue
        key = target[7:] if target.startswith("custom.") else None
        if key is not None and (key in defs or generated_label(key) is not None):
            continue
        bad.append(f"{column} → {target}")
    if bad:
        raise ValidationFailed(
            "mapping names unknown fields: "
            + "; ".join(bad[:10])
            + " (use a lead field, owner, custom.<key> or ignore)",
            field="mapping",
        )


def resolve_dates(ctx: ImportContext, source: Source) -> None:
    """Decide the order of each date column whose values use `/` or `-` (once per file).

    Reads the first rows, and the rest of the file only while every value fits both orders;
    a column that stays open for the whole file is reported (DatesAmbiguous), not guessed.
    The orders found are added to `options.date_formats` (a background run reuses them).
    """
    todo = [i for i in ctx.date_columns if ctx.date_orders.get(i) is None]
    if not todo:
        return
    _, rows = open_rows(source, ctx.settings)
    try:
        found = scan_dates(rows, todo)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    ambiguous: list[dict[str, Any]] = []
    for i in todo:
        evidence = found[i]
        if evidence.ambiguous:
            ambiguous.append(
                {
                    "column": ctx.headers[i],
                    "examples": evidence.examples,
                    "mixed": evidence.day_first and evidence.month_first,
                }
            )
        elif evidence.order is not None:
            ctx.date_orders[i] = evidence.order
            ctx.options.date_formats = {
                **(ctx.options.date_formats or {}),
                ctx.headers[i]: evidence.order,
            }
    if ambiguous:
        names = ", ".join(repr(a["column"]) for a in ambiguous)
        first = str(ambiguous[0]["column"])
        raise DatesAmbiguous(
            f"The dates of column {names} read as day-first and as month-first; give "
            f'date_formats, e.g. {{"{first}": "MM/DD/YYYY"}}',
            columns=ambiguous,
        )


async def ensure_fields(session: AsyncSession, ctx: ImportContext, records: Any) -> None:
    """Define the custom fields the import fills itself (text fields: `mobile`, `email_2` …)
    that these records use and the organisation lacks; audited as the importer's."""
    wanted = {k for r in records for k in (r.get("custom") or {}) if k in ctx.generated}
    for key in sorted(wanted - ctx.created):
        ctx.created.add(key)
        try:
            async with session.begin_nested():
                await customfields.create_field(
                    session,
                    ctx.actor,
                    FieldCreate(key=key, label=ctx.generated[key], type=FieldType.TEXT),
                )
        except (FieldExists, IntegrityError):
            pass  # another import defined it meanwhile
