"""Streaming lead exports (CSV, XLSX) with flat memory at any size."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Literal

import xlsxwriter
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import StreamingResponse

from leadflow.audit.service import record
from leadflow.authz.actor import Actor
from leadflow.customfields import service as customfields
from leadflow.db.dialect import dialect_name
from leadflow.db.engine import transactions_that
from leadflow.kit.clock import utcnow
from leadflow.kit.normalize import neutralize_formula
from leadflow.leads import repository
from leadflow.leads.schemas import ExportIn
from leadflow.models.lead import Lead

EXPORT_COLUMNS = (
    "id",
    "created_at",
    "status",
    "first_name",
    "last_name",
    "email",
    "phone",
    "tags",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "last_contacted_at",
)
_BATCH = 1000


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(map(str, value))
    elif hasattr(value, "isoformat"):
        value = value.isoformat()
    return neutralize_formula(str(value))


def row_of(row: Mapping[str, Any], custom_keys: Sequence[str]) -> list[str]:
    """One export row: the fixed columns, then the custom fields."""
    custom = row["custom"] or {}
    return [_cell(row[c]) for c in EXPORT_COLUMNS] + [_cell(custom.get(k)) for k in custom_keys]


# The exported columns only, as plain rows: building an ORM object per lead (and evicting
# it again to keep memory flat) made an export several times slower than the rows it reads.
_SELECTED = [*(Lead.__table__.c[c] for c in EXPORT_COLUMNS), Lead.__table__.c.custom]


def export_statement(session: AsyncSession, actor: Actor, f: ExportIn) -> Select[Any]:
    """The export's statement, built (and its filter and sort validated) before streaming:
    once the response has started, a bad value could no longer be answered with a 422."""
    dialect = dialect_name(session)
    return repository.export_query(actor, f, f.sort, dialect, columns=_SELECTED)


async def _leads(
    factory: Callable[[], AsyncSession], stmt: Select[Any]
) -> AsyncIterator[Sequence[Mapping[str, Any]]]:
    """The matching leads in batches of `_BATCH` rows, read through a server-side cursor."""
    async with factory() as session:
        # Only reads: on SQLite a slow reader must not hold the write lock (the request is a
        # POST). The mark matters when the transaction begins, so it ends before any yield.
        with transactions_that(write=False):
            result = await session.stream(stmt.execution_options(yield_per=_BATCH))
        async for batch in result.mappings().partitions():
            yield batch


async def stream_csv(
    factory: Callable[[], AsyncSession], stmt: Select[Any], custom_keys: Sequence[str]
) -> AsyncIterator[bytes]:
    """CSV bytes in chunks of about a thousand rows."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([*EXPORT_COLUMNS, *custom_keys])
    async for batch in _leads(factory, stmt):
        writer.writerows(row_of(row, custom_keys) for row in batch)
        yield buf.getvalue().encode()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue().encode()


async def stream_xlsx(
    factory: Callable[[], AsyncSession], stmt: Select[Any], custom_keys: Sequence[str]
) -> AsyncIterator[bytes]:
    """XLSX built row by row in constant memory on disk, then streamed and removed."""
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        book = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        sheet = book.add_worksheet("Leads")
        for col, name in enumerate([*EXPORT_COLUMNS, *custom_keys]):
            sheet.write_string(0, col, name)
        row = 1
        async for batch in _leads(factory, stmt):
            for lead in batch:
                for col, value in enumerate(row_of(lead, custom_keys)):
                    sheet.write_string(row, col, value)
                row += 1
        book.close()
        with open(path, "rb") as fh:  # noqa: ASYNC230 (local temp file, chunked)
            while chunk := fh.read(256 * 1024):
                yield chunk
    finally:
        os.unlink(path)


async def export_response(
    session: AsyncSession,
    factory: Callable[[], AsyncSession],
    actor: Actor,
    f: ExportIn,
    fmt: Literal["csv", "xlsx"],
) -> StreamingResponse:
    """The audited, streamed export of the leads `f` selects (needs `leads:export`).

    The API's `POST /leads/export` and the web app's export button both answer with this.
    """
    actor.require("leads:export")
    stmt = export_statement(session, actor, f)
    defs = await customfields.list_fields(session, actor.organization_id)
    keys = [d.key for d in defs]
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.export",
        resource_type="lead",
        resource_id=None,
        after={"format": fmt, "filter": f.model_dump(mode="json")},
    )
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    if fmt == "xlsx":
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        gen = stream_xlsx(factory, stmt, keys)
    else:
        media = "text/csv; charset=utf-8"
        gen = stream_csv(factory, stmt, keys)
    headers = {"Content-Disposition": f'attachment; filename="leads-{stamp}.{fmt}"'}
    return StreamingResponse(gen, media_type=media, headers=headers)
