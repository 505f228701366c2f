"""POST /api/v1/leads/import (alias POST /import/leads) and /api/v1/imports."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic_core import from_json
from sqlalchemy.ext.asyncio import AsyncSession

import leadflow.imports.timeline  # noqa: F401  (registers the "imported" timeline kind)
from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.exceptions import PayloadTooLarge, ValidationFailed
from leadflow.imports import batches
from leadflow.imports.errors import InvalidFile, UnsupportedMediaType
from leadflow.imports.options import OPTION_KEYS, parse_options
from leadflow.imports.parsing import FileProblem
from leadflow.imports.preview import preview
from leadflow.imports.rows import Source, estimate_rows
from leadflow.imports.schemas import (
    BatchRead,
    ImportAccepted,
    ImportPreview,
    ImportResult,
    ImportWarning,
    RowError,
)
from leadflow.imports.undo import undo
from leadflow.imports.uploads import file_source, upload_format
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.models.import_batch import ImportBatch

import_router = APIRouter(tags=["imports"])
batches_router = APIRouter(tags=["imports"])
Importer = Annotated[Actor, Depends(require_permission("imports:write"))]


async def _spool_body(request: Request, limit: int, spool: IO[bytes]) -> None:
    """Copy the request body into `spool` as it streams (413 past `limit`)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The file is larger than {limit} bytes", max_bytes=limit)
    size = 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise PayloadTooLarge(f"The file is larger than {limit} bytes", max_bytes=limit)
        spool.write(piece)
    spool.seek(0)


def _single(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), batches.FILE_CHUNK_BYTES):
        yield data[i : i + batches.FILE_CHUNK_BYTES]


async def _source(
    request: Request, limit: int, stack: AsyncExitStack
) -> tuple[Source, dict[str, Any]]:
    """The uploaded file, spooled to a temporary file (memory up to 1 MiB, then disk).

    Neither a form upload nor a raw body is ever held whole in memory; JSON bodies are the
    exception, because they are parsed as a whole.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw_opts: dict[str, Any] = {k: v for k, v in request.query_params.items() if k in OPTION_KEYS}
    if ctype == "multipart/form-data":
        # Starlette writes each file part into a SpooledTemporaryFile while it streams.
        form = await request.form()
        stack.push_async_callback(form.close)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValidationFailed("Send the file in a form field named 'file'", field="file")
        size = upload.size if upload.size is not None else upload.file.seek(0, os.SEEK_END)
        if size > limit:
            raise PayloadTooLarge(f"The file is larger than {limit} bytes", max_bytes=limit)
        fmt = upload_format(upload.filename, upload.content_type)
        raw_opts.update({k: v for k, v in form.items() if k in OPTION_KEYS and isinstance(v, str)})
        return file_source(fmt, upload.file, upload.filename), raw_opts
    spool = stack.enter_context(
        tempfile.SpooledTemporaryFile(max_size=batches.FILE_CHUNK_BYTES)  # noqa: SIM115 (closed by the stack)
    )
    await _spool_body(request, limit, spool)
    if ctype == "application/json":
        body = spool.read()
        try:
            # Up to the import limit: parsed off the event loop.
            payload = await asyncio.to_thread(from_json, body)
        except ValueError as exc:
            raise InvalidFile(f"The body is not valid JSON: {exc}") from None
        if isinstance(payload, dict):
            raw_opts.update({k: v for k, v in payload.items() if k in OPTION_KEYS})
            if isinstance(payload.get("csv"), str):
                text = payload["csv"].encode()
                return Source(fmt="csv", chunks=lambda: _single(text)), raw_opts
            rows = payload.get("rows") or payload.get("leads")
            if isinstance(rows, list):
                encoded = await asyncio.to_thread(lambda: json.dumps(rows).encode())
                return Source(fmt="json", chunks=lambda: _single(encoded)), raw_opts
            raise InvalidFile('Send {"csv": "..."}, {"rows": [...]} or an array of objects')
        return Source(fmt="json", chunks=lambda: _single(body)), raw_opts
    if ctype in ("text/csv", "text/plain", "application/csv", "application/octet-stream", ""):
        return file_source("csv", spool), raw_opts
    if "spreadsheetml" in ctype:
        return file_source("xlsx", spool), raw_opts
    raise UnsupportedMediaType(
        f"Unsupported content type {ctype!r}; send text/csv, application/json or "
        "multipart/form-data"
    )


_DOC = {
    "requestBody": {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object", "properties": {"csv": {"type": "string"}}},
                        {"type": "array", "items": {"type": "object"}},
                    ]
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        }
    }
}


@import_router.post(
    "/import",
    response_model=ImportResult,
    openapi_extra=_DOC,
    responses={202: {"model": ImportAccepted}},
)
async def import_leads(request: Request, session: SessionDep, actor: Importer) -> Any:
    """Import leads from CSV, JSON or XLSX (options in the query, JSON body or form)."""
    settings = request.app.state.settings
    # End the authentication's transaction before the body streams in: on SQLite it holds
    # the write lock, which a slow upload must not keep from every other writer.
    await session.commit()
    async with AsyncExitStack() as stack:
        source, raw_opts = await _source(request, settings.import_max_bytes, stack)
        options = parse_options(raw_opts)
        try:
            # Counting reads the whole file (an XLSX sheet is parsed): off the event loop, and
            # before the next transaction begins.
            estimate = await asyncio.to_thread(estimate_rows, source, settings)
            await batches.preflight(session, actor, settings, source, options)
            if estimate > settings.import_sync_max_rows and not options.dry_run:
                started = await batches.start_async(session, actor, source, options)
                url = f"/api/v1/imports/{started.id}"
                return JSONResponse(
                    ImportAccepted(
                        import_batch_id=started.id, status=started.status, status_url=url
                    ).model_dump(mode="json"),
                    status_code=status.HTTP_202_ACCEPTED,
                )
            batch, report = await batches.run_sync(session, actor, settings, source, options)
        except FileProblem as exc:
            raise exc.error(str(exc), **exc.extra) from None
    return ImportResult(
        import_batch_id=batch.id if batch else None,
        dry_run=options.dry_run,
        total_rows=report.total_rows,
        imported_count=report.imported_count,
        updated_count=report.updated_count,
        skipped_count=report.skipped_count,
        needs_action_count=report.needs_action_count,
        without_last_contact_count=report.without_last_contact_count,
        error_count=report.error_count,
        errors=[RowError(**e) for e in report.errors],
        errors_not_stored=await _not_stored(session, batch),
        ignored_columns=report.ignored_columns,
        warning_count=report.warning_count,
        warnings=[ImportWarning(**w) for w in report.warnings],
    )


@import_router.post("/import/preview", response_model=ImportPreview, openapi_extra=_DOC)
async def preview_import(request: Request, session: SessionDep, actor: Importer) -> ImportPreview:
    """What importing this file would do (same bodies and options as the import): format,
    source product, where each column goes and why, statuses → stages, owners found or not.
    Nothing is written."""
    settings = request.app.state.settings
    await session.commit()  # as the import: no write lock held while the body streams in
    async with AsyncExitStack() as stack:
        source, raw_opts = await _source(request, settings.import_max_bytes, stack)
        options = parse_options(raw_opts)
        try:
            return await preview(session, actor, settings, source, options)
        except FileProblem as exc:
            raise exc.error(str(exc), **exc.extra) from None


async def _not_stored(session: AsyncSession, batch: ImportBatch | None) -> int:
    if batch is None:
        return 0
    stored = (await batches.stored_error_counts(session, [batch.id])).get(batch.id, 0)
    return max(0, batch.error_count - stored)


def _read(batch: ImportBatch, errors: list[RowError], stored: int = 0) -> BatchRead:
    progress = (batch.processed_rows / batch.total_rows) if batch.total_rows else None
    if batch.status in ("completed", "undone"):
        progress = 1.0
    return BatchRead(
        id=batch.id,
        status=batch.status,
        filename=batch.filename,
        file_format=batch.file_format,
        options=batch.options,
        total_rows=batch.total_rows,
        processed_rows=batch.processed_rows,
        progress=progress,
        imported_count=batch.imported_count,
        updated_count=batch.updated_count,
        skipped_count=batch.skipped_count,
        error_count=batch.error_count,
        needs_action_count=batch.needs_action_count,
        without_last_contact_count=batch.without_last_contact_count,
        ignored_columns=batch.ignored_columns,
        errors=errors,
        errors_stored=stored,
        errors_not_stored=max(0, batch.error_count - stored),
        errors_truncated=batch.error_count > stored,
        failure=batch.failure,
        created_at=batch.created_at,
        finished_at=batch.finished_at,
        undone_at=batch.undone_at,
    )


@batches_router.get("", response_model=Page[BatchRead])
async def list_imports(
    session: SessionDep, actor: Importer, page: Annotated[PageParams, Depends(page_params)]
) -> Page[BatchRead]:
    """Imports in the caller's scope (own / team / org by who started them), newest first."""
    rows, total = await batches.list_batches(session, actor, page.limit, page.offset)
    stored = await batches.stored_error_counts(session, [b.id for b in rows])
    return Page(
        items=[_read(b, [], stored.get(b.id, 0)) for b in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@batches_router.get("/{batch_id}", response_model=BatchRead)
async def get_import(
    session: SessionDep,
    actor: Importer,
    batch_id: uuid.UUID,
    errors: Annotated[int, Query(ge=0, le=1000)] = 100,
) -> BatchRead:
    """Status, progress (rows done of total) and counts of an import."""
    batch = await batches.get_batch(session, actor, batch_id)
    rows = await batches.batch_errors(session, batch.id, errors)
    stored = await batches.stored_error_counts(session, [batch.id])
    return _read(
        batch,
        [
            RowError(row=r.row, column=r.column, value=r.value, message=r.message, code=r.code)
            for r in rows
        ],
        stored.get(batch.id, 0),
    )


@batches_router.get("/{batch_id}/errors.csv")
async def import_errors_csv(
    session: SessionDep, factory: SessionFactoryDep, actor: Importer, batch_id: uuid.UUID
) -> StreamingResponse:
    """The stored failed rows as uploaded plus an `error` column, ready to fix and upload again."""
    body = await batches.errors_csv(session, actor, batch_id, factory)
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{batch_id}-errors.csv"'},
    )


@batches_router.post("/{batch_id}/undo", response_model=BatchRead)
async def undo_import(session: SessionDep, actor: Importer, batch_id: uuid.UUID) -> BatchRead:
    """Remove the leads the import created and restore the fields it updated."""
    return _read(await undo(session, actor, batch_id), [])
