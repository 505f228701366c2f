"""POST /api/v1/leads/import/preview: what an import of a file would do, nothing written.

The file is read once (off the event loop): per column a few sample values, the distinct
status and owner values with their counts, and the values of the date columns, whose order is
decided for the whole file as the import decides it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.imports import errors, parsing
from leadflow.imports.detect import DateEvidence, detect_product, scan_dates
from leadflow.imports.headers import IDENTITY_FIELDS, OWNER
from leadflow.imports.options import ImportOptions
from leadflow.imports.rows import ImportContext, Source, load_context, open_rows
from leadflow.imports.schemas import (
    ImportPreview,
    PreviewColumn,
    PreviewCustomField,
    PreviewFile,
    PreviewOwner,
    PreviewProblem,
    PreviewSource,
    PreviewStatus,
)

SAMPLES = 3
SAMPLE_CHARS = 100
MAX_DISTINCT = 1000  # status and owner values listed (the most frequent)
MAX_COUNTED = 10_000  # distinct values counted per list (memory stays bounded for any file)


@dataclass
class _Scan:
    rows: int = 0
    samples: dict[int, list[str]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    owners: Counter[str] = field(default_factory=Counter)
    dates: dict[int, DateEvidence] = field(default_factory=dict)


def _scan(ctx: ImportContext, source: Source) -> _Scan:
    """One pass over the file: samples, distinct status/owner values, date evidence."""
    out = _Scan()
    targets = ctx.plan.targets
    status_cols = [i for i, t in enumerate(targets) if t == "status"]
    owner_cols = [i for i, t in enumerate(targets) if t == OWNER]
    date_cols = list(ctx.date_columns)
    samples: dict[int, list[str]] = {i: [] for i in range(len(ctx.headers))}
    open_samples = set(samples)
    date_values: list[list[Any]] = []
    _, rows = open_rows(source, ctx.settings)
    try:
        for row in rows:
            if not any(parsing.text(v) for v in row):
                continue
            out.rows += 1
            for i in list(open_samples):
                value = parsing.text(row[i]) if i < len(row) else ""
                if value and value[:SAMPLE_CHARS] not in samples[i]:
                    samples[i].append(value[:SAMPLE_CHARS])
                    if len(samples[i]) >= SAMPLES:
                        open_samples.discard(i)
            for i in status_cols:
                _count(out.statuses, parsing.text(row[i]) if i < len(row) else "")
            for i in owner_cols:
                _count(out.owners, parsing.text(row[i]) if i < len(row) else "")
            if date_cols:
                date_values.append(row)
                if len(date_values) >= 5000:
                    _dates(out, date_values, date_cols)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    _dates(out, date_values, date_cols)
    out.samples = samples
    return out


def _count(counter: Counter[str], value: str) -> None:
    if value and (value in counter or len(counter) < MAX_COUNTED):
        counter[value] += 1


def _dates(out: _Scan, rows: list[list[Any]], columns: list[int]) -> None:
    """Fold a batch of rows into the date evidence (all rows count)."""
    found = scan_dates(iter(rows), columns, sample_rows=None)
    for i, evidence in found.items():
        total = out.dates.setdefault(i, DateEvidence())
        total.numeric |= evidence.numeric
        total.day_first |= evidence.day_first
        total.month_first |= evidence.month_first
        for family in evidence.families:
            if family not in total.families:
                total.families.append(family)
        for example in evidence.examples:
            if len(total.examples) < 3 and example not in total.examples:
                total.examples.append(example)
    rows.clear()


def _file(source: Source) -> PreviewFile:
    encoding = delimiter = None
    if source.fmt == "csv":
        head = b""
        for piece in source.chunks():
            head += piece
            if len(head) >= 65536:
                break
        encoding = parsing.detect_encoding(head[:65536])
        sample = head[:65536].decode(encoding, errors="replace")
        delimiter = parsing.sniff_delimiter(sample)
    return PreviewFile(format=source.fmt, encoding=encoding, delimiter=delimiter, rows=0)


async def preview(
    session: AsyncSession, actor: Actor, settings: Settings, source: Source, options: ImportOptions
) -> ImportPreview:
    """The detected format and product, the column plan with samples and reasons, the status
    values with their stages, the owners found or not, and what would stop the import."""
    header, rows = open_rows(source, settings)
    close = getattr(rows, "close", None)
    if close is not None:
        close()
    ctx = await load_context(session, actor, settings, options, header, require_identity=False)
    scan = await asyncio.to_thread(_scan, ctx, source)
    info = await asyncio.to_thread(_file, source)
    info.rows = scan.rows
    problems: list[PreviewProblem] = []
    if not any(t in IDENTITY_FIELDS for t in ctx.plan.targets):
        problems.append(
            PreviewProblem(
                code=errors.InvalidFile.code,
                message="No name, email or phone column found: map one in `mapping`",
            )
        )
    date_formats: dict[str, str] = {}
    date_format_of: dict[int, str | None] = {}
    for i in ctx.date_columns:
        column = ctx.headers[i]
        given = ctx.date_orders.get(i)
        evidence = scan.dates.get(i, DateEvidence())
        if given is not None:
            date_formats[column] = given
            date_format_of[i] = given
            continue
        date_format_of[i] = evidence.format
        if evidence.order is not None:
            date_formats[column] = evidence.order
        elif evidence.ambiguous:
            mixed = evidence.day_first and evidence.month_first
            problems.append(
                PreviewProblem(
                    code=errors.AmbiguousDates.code,
                    column=column,
                    examples=evidence.examples,
                    message=(
                        "the values mix day-first and month-first dates"
                        if mixed
                        else "every value reads as day-first and as month-first"
                    )
                    + ': give date_formats, e.g. {"'
                    + column
                    + '": "MM/DD/YYYY"}',
                )
            )
    columns = [
        PreviewColumn(
            column=col.header,
            target=col.target,
            rule=col.rule,
            reason=col.reason,
            samples=scan.samples.get(i, []),
            date_format=date_format_of.get(i),
        )
        for i, col in enumerate(ctx.plan.columns)
    ]
    statuses = []
    for value, count in scan.statuses.most_common(MAX_DISTINCT):
        choice = ctx.resolver.choose(value)
        statuses.append(
            PreviewStatus(
                value=value, count=count, stage=choice.stage, rule=choice.rule, reason=choice.reason
            )
        )
    owners = []
    # Who the users are is shown to those who may list users; the others see found or not.
    named = actor.can("users:read")
    if ctx.owners is not None:
        for value, count in scan.owners.most_common(MAX_DISTINCT):
            owner = ctx.owners.choose(value)
            owners.append(
                PreviewOwner(
                    value=value,
                    count=count,
                    found=owner.user is not None,
                    assigned=owner.assignee is not None,
                    user_id=owner.user.id if owner.user and named else None,
                    user_name=owner.user.full_name if owner.user and named else None,
                    code=owner.code,
                    message=owner.message,
                )
            )
    filled = {
        t[7:]
        for i, t in enumerate(ctx.plan.targets)
        if t is not None and t.startswith("custom.") and scan.samples.get(i)
    }
    guess = detect_product(header)
    return ImportPreview(
        file=info,
        source=PreviewSource(product=guess.key, name=guess.name, confidence=guess.confidence),
        columns=columns,
        ignored_columns=ctx.plan.ignored,
        statuses=statuses,
        owners=owners,
        custom_fields_to_create=[
            PreviewCustomField(key=k, label=label)
            for k, label in ctx.generated.items()
            if k in filled
        ],
        mapping={c.header: c.target or "ignore" for c in ctx.plan.columns if c.header.strip()},
        status_map={s.value: s.stage or "" for s in statuses},
        date_formats=date_formats,
        problems=problems,
    )
