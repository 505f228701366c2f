"""The import wizard: upload CSV/XLSX → the import preview's proposal (editable) → dry run →
import (in the background with live progress when the file is large) → result with
errors.csv and undo.

The wizard keeps no file on the server between steps: it is one form, and each step sends the
chosen file again with the edited mapping (htmx swaps only the step below the file input, so
the browser keeps the selection). Every step calls the imports services the API's
`/api/v1/leads/import`, `/import/preview` and `/api/v1/imports` endpoints call, after the same
`imports:write` check.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

import leadflow.imports.timeline  # noqa: F401  (registers the "imported" timeline kind)
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.exceptions import LeadflowError, PayloadTooLarge, ValidationFailed
from leadflow.imports import batches
from leadflow.imports.headers import mapping_targets
from leadflow.imports.options import ImportOptions, parse_options
from leadflow.imports.parsing import DATE_ORDERS, FileProblem
from leadflow.imports.preview import preview
from leadflow.imports.rows import Source, estimate_rows
from leadflow.imports.undo import undo
from leadflow.imports.uploads import file_source, upload_format
from leadflow.models.import_batch import ImportBatch
from leadflow.pipeline import service as pipeline
from leadflow.web.forms import form_text
from leadflow.web.session import WebActor
from leadflow.web.templating import is_htmx, load_shell, redirect, render

router = APIRouter(prefix="/crm/import", include_in_schema=False)

PERMISSION = "imports:write"
RECENT_SHOWN = 10
ERRORS_SHOWN = 20
# Status values editable one by one; a file with more keeps the rest as proposed (a form
# carries at most ~1000 fields).
STATUSES_EDITABLE = 200
COLUMNS_EDITABLE = 300
ON_DUPLICATE = ("skip", "update", "create")
FINISHED = frozenset({"completed", "failed", "undone"})


# ---- the form -------------------------------------------------------------------------------


def _upload(form: FormData) -> UploadFile:
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        raise ValidationFailed("Choose a CSV or XLSX file", field="file")
    return upload


def _source(upload: UploadFile, limit: int) -> Source:
    """The chosen file as an import source (as the API reads a form upload)."""
    size = upload.size if upload.size is not None else upload.file.seek(0, os.SEEK_END)
    if size > limit:
        raise PayloadTooLarge(f"The file is larger than {limit} bytes", max_bytes=limit)
    upload.file.seek(0)
    fmt = upload_format(upload.filename, upload.content_type)
    return file_source(fmt, upload.file, upload.filename)


def _indexed(form: FormData, key: str, value: str, limit: int) -> dict[str, str]:
    """`{form[key_i]: form[value_i]}` for the rows of an edited table."""
    out: dict[str, str] = {}
    for i in range(limit):
        name = form.get(f"{key}_{i}")
        if not isinstance(name, str):
            break
        chosen = form.get(f"{value}_{i}")
        if isinstance(chosen, str):
            out[name] = chosen
    return out


def _json_map(form: FormData, name: str) -> dict[str, str]:
    raw = form_text(form, name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a JSON object", field=name) from None
    if not isinstance(value, dict):
        raise ValidationFailed(f"{name} must be a JSON object", field=name)
    return {str(k): str(v) for k, v in value.items()}


def _options(form: FormData, *, dry_run: bool) -> ImportOptions:
    """The import options of the form, validated by the API's option parser.

    A fresh file (`fresh`) is previewed without the edits of the previous one.
    """
    raw: dict[str, Any] = {"dry_run": dry_run}
    duplicate = form_text(form, "on_duplicate")
    if duplicate:
        raw["on_duplicate"] = duplicate
    for key in ("default_status", "assignee_id"):
        if form_text(form, key):
            raw[key] = form_text(form, key)
    if form_text(form, "fresh"):
        return parse_options(raw)
    mapping = _indexed(form, "column", "target", COLUMNS_EDITABLE)
    if mapping:
        raw["mapping"] = mapping
    statuses = {**_json_map(form, "status_map_rest"), **_indexed(form, "sv", "stage", 10_000)}
    if statuses:
        raw["status_map"] = statuses
    dates = {
        k: v for k, v in _indexed(form, "column", "date_format", COLUMNS_EDITABLE).items() if v
    }
    if dates:
        raw["date_formats"] = dates
    return parse_options(raw)


async def _form(request: Request, session: AsyncSession, actor: Actor) -> FormData:
    actor.require(PERMISSION)
    # As the API: no transaction (on SQLite, the write lock) is held while the file is read.
    await session.commit()
    return await request.form(max_fields=2 * COLUMNS_EDITABLE + 2 * STATUSES_EDITABLE + 50)


async def _step(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    """A wizard step: the fragment for htmx, else the wizard page with the step in it (a
    browser without scripts chooses the file again for the next step)."""
    if is_htmx(request):
        return render(request, template, context, status_code=status_code)
    await load_shell(request, session, actor)
    recent, _ = await batches.list_batches(session, actor, RECENT_SHOWN, 0)
    page = {"recent": recent, "on_duplicate": ON_DUPLICATE, "step": template, **context}
    return render(request, "imports/wizard.html", page, status_code=status_code)


async def _problem(
    request: Request, session: AsyncSession, actor: Actor, exc: Exception
) -> Response:
    """A whole-file problem or a refused option, shown in the wizard's step."""
    detail = str(exc) if isinstance(exc, FileProblem) else getattr(exc, "detail", str(exc))
    errors: list[dict[str, Any]] = []
    if isinstance(exc, LeadflowError):
        errors = list(exc.extra.get("errors") or [])
    return await _step(
        request,
        session,
        actor,
        "imports/_problem.html",
        {"detail": detail, "errors": errors},
        413 if isinstance(exc, PayloadTooLarge) else 422,
    )


# ---- pages ----------------------------------------------------------------------------------


@router.get("")
async def wizard_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """The upload form and the recent imports in the actor's scope."""
    actor.require(PERMISSION)
    await load_shell(request, session, actor)
    recent, _ = await batches.list_batches(session, actor, RECENT_SHOWN, 0)
    return render(
        request,
        "imports/wizard.html",
        {"recent": recent, "on_duplicate": ON_DUPLICATE},
    )


@router.post("/preview")
async def preview_step(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """The import preview's proposal as an editable form (nothing is written)."""
    form = await _form(request, session, actor)
    settings = request.app.state.settings
    try:
        source = _source(_upload(form), settings.import_max_bytes)
        options = _options(form, dry_run=True)
        proposal = await preview(session, actor, settings, source, options)
    except (FileProblem, LeadflowError) as exc:
        await session.rollback()
        return await _problem(request, session, actor, exc)
    stages = await pipeline.list_stages(session, actor)
    statuses = proposal.statuses[:STATUSES_EDITABLE]
    rest = {s.value: s.stage or "" for s in proposal.statuses[STATUSES_EDITABLE:]}
    targets = sorted({t for t in proposal.mapping.values() if t != "ignore"} | mapping_targets())
    return await _step(
        request,
        session,
        actor,
        "imports/_preview.html",
        {
            "p": proposal,
            "columns": proposal.columns[:COLUMNS_EDITABLE],
            "statuses": statuses,
            "status_map_rest": json.dumps(rest) if rest else "",
            "targets": targets,
            "stages": stages,
            "date_orders": DATE_ORDERS,
        },
    )


@router.post("/dry-run")
async def dry_run_step(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """What the import would do with the edited mapping: counts and the first errors."""
    form = await _form(request, session, actor)
    settings = request.app.state.settings
    try:
        source = _source(_upload(form), settings.import_max_bytes)
        options = _options(form, dry_run=True)
        await batches.preflight(session, actor, settings, source, options)
        _, report = await batches.run_sync(session, actor, settings, source, options)
    except (FileProblem, LeadflowError) as exc:
        await session.rollback()
        return await _problem(request, session, actor, exc)
    return await _step(
        request,
        session,
        actor,
        "imports/_dry_run.html",
        {"r": report, "errors": report.errors[:ERRORS_SHOWN], "warnings": report.warnings[:10]},
    )


@router.post("/run")
async def run_step(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Import: a small file at once, a large one by the worker (as the API decides); then
    the batch's page follows the progress."""
    form = await _form(request, session, actor)
    settings = request.app.state.settings
    try:
        source = _source(_upload(form), settings.import_max_bytes)
        options = _options(form, dry_run=False)
        estimate = await asyncio.to_thread(estimate_rows, source, settings)
        await batches.preflight(session, actor, settings, source, options)
        if estimate > settings.import_sync_max_rows:
            batch: ImportBatch | None = await batches.start_async(session, actor, source, options)
        else:
            batch, _ = await batches.run_sync(session, actor, settings, source, options)
    except (FileProblem, LeadflowError) as exc:
        await session.rollback()
        return await _problem(request, session, actor, exc)
    assert batch is not None  # not a dry run
    await session.commit()
    return redirect(request, f"/crm/import/{batch.id}")


async def _batch_context(
    session: AsyncSession, actor: Actor, batch_id: uuid.UUID
) -> dict[str, Any]:
    actor.require(PERMISSION)
    batch = await batches.get_batch(session, actor, batch_id)
    finished = batch.status in FINISHED
    errors = await batches.batch_errors(session, batch.id, ERRORS_SHOWN) if finished else []
    stored = (await batches.stored_error_counts(session, [batch.id])).get(batch.id, 0)
    percent = 100 if batch.status in ("completed", "undone") else 0
    if batch.status not in ("completed", "undone") and batch.total_rows:
        percent = min(100, int(100 * batch.processed_rows / batch.total_rows))
    return {
        "batch": batch,
        "finished": finished,
        "errors": errors,
        "errors_stored": stored,
        "percent": percent,
        "may_undo": batch.status in ("completed", "failed"),
    }


@router.get("/{batch_id}")
async def batch_page(
    request: Request, session: SessionDep, actor: WebActor, batch_id: uuid.UUID
) -> Response:
    """An import: live progress while it runs, then its counts, errors and undo."""
    context = await _batch_context(session, actor, batch_id)
    await load_shell(request, session, actor)
    return render(request, "imports/batch.html", context)


@router.get("/{batch_id}/progress")
async def batch_progress(
    request: Request, session: SessionDep, actor: WebActor, batch_id: uuid.UUID
) -> Response:
    """The progress fragment htmx polls every second (it stops polling once finished)."""
    context = await _batch_context(session, actor, batch_id)
    return render(request, "imports/_batch.html", context)


@router.get("/{batch_id}/errors.csv")
async def batch_errors_csv(
    session: SessionDep, factory: SessionFactoryDep, actor: WebActor, batch_id: uuid.UUID
) -> StreamingResponse:
    """The failed rows as uploaded plus an `error` column (the API's errors.csv)."""
    actor.require(PERMISSION)
    body = await batches.errors_csv(session, actor, batch_id, factory)
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{batch_id}-errors.csv"'},
    )


@router.post("/{batch_id}/undo")
async def undo_batch(
    request: Request, session: SessionDep, actor: WebActor, batch_id: uuid.UUID
) -> Response:
    """Remove the leads the import created and restore what it updated (the API's undo)."""
    actor.require(PERMISSION)
    await undo(session, actor, batch_id)
    return redirect(request, f"/crm/import/{batch_id}")
