"""Reports: build one from the field catalogue (or a ready-made template), preview it,
export it (a signed download link), schedule it, and see the history of its runs.

Every step is the reports service the API's `/api/v1/reports` endpoints call, after the same
permission checks (`reports:read`; exports and schedules also `leads:export`).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.exceptions import LeadflowError
from leadflow.kit.pagination import PageParams
from leadflow.reports import service
from leadflow.reports.schemas import BuildIn, Definition, ScheduleIn
from leadflow.web.forms import field_errors, form_list, form_text
from leadflow.web.session import WebActor
from leadflow.web.templating import load_shell, local_path, redirect, render

router = APIRouter(prefix="/crm/reports", include_in_schema=False)

REPORTS_SHOWN = 50
RUNS_SHOWN = 20
FILTER_ROWS = 3
AGGREGATION_ROWS = 2
FORMATS = ("csv", "xlsx", "pdf")
# Operators whose value is a list (comma-separated in the form) or nothing at all.
_LIST_OPS = frozenset({"in", "not_in", "between"})
_NO_VALUE_OPS = frozenset({"is_null", "is_not_null"})


def _inline(exc: Exception) -> bool:
    return isinstance(exc, ValidationError) or (
        isinstance(exc, LeadflowError) and exc.status in (409, 422)
    )


def _scalar(raw: str, field_type: str) -> Any:
    """A filter value as the catalogue's type expects it (numbers as numbers)."""
    if field_type == "number":
        try:
            return int(raw)
        except ValueError:
            try:
                return float(raw)
            except ValueError:
                return raw
    if field_type == "boolean":
        return raw.lower() in ("1", "true", "yes", "ja")
    return raw


def definition_of(form: FormData) -> dict[str, Any]:
    """The report definition the builder form describes (validated by the service)."""
    types = {f.key: f.type for f in service.catalogue().fields}
    filters: list[dict[str, Any]] = []
    for i in range(FILTER_ROWS):
        field, op = form_text(form, f"filter_field_{i}"), form_text(form, f"filter_op_{i}")
        if not field or not op:
            continue
        raw = form_text(form, f"filter_value_{i}")
        kind = "number" if op == "within_last_days" else types.get(field, "string")
        value: Any
        if op in _NO_VALUE_OPS:
            value = None
        elif op in _LIST_OPS:
            value = [_scalar(v.strip(), kind) for v in raw.split(",") if v.strip()]
        else:
            value = _scalar(raw, kind)
        filters.append({"field": field, "op": op, "value": value})
    aggregations = []
    for i in range(AGGREGATION_ROWS):
        function = form_text(form, f"agg_function_{i}")
        if function:
            aggregations.append(
                {"function": function, "field": form_text(form, f"agg_field_{i}") or None}
            )
    sorting = []
    if form_text(form, "sort_field"):
        direction = "desc" if form_text(form, "sort_direction") == "desc" else "asc"
        sorting.append({"field": form_text(form, "sort_field"), "direction": direction})
    return {
        "fields": form_list(form, "fields"),
        "filters": filters,
        "grouping": form_list(form, "grouping"),
        "sorting": sorting,
        "aggregations": aggregations,
    }


async def _list_context(session: AsyncSession, actor: Actor) -> dict[str, Any]:
    reports, total = await service.list_reports(
        session, actor, PageParams(limit=REPORTS_SHOWN, offset=0)
    )
    return {
        "reports": reports,
        "total": total,
        "catalogue": service.catalogue(),
        "templates": service.templates(),
        "filter_rows": range(FILTER_ROWS),
        "aggregation_rows": range(AGGREGATION_ROWS),
        "errors": {},
        "draft": None,
    }


@router.get("")
async def reports_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Saved reports, the builder (optionally started from a template) and the templates."""
    actor.require("reports:read")
    await load_shell(request, session, actor)
    context = await _list_context(session, actor)
    chosen = str(request.query_params.get("template") or "")
    template = next((t for t in context["templates"] if t.id == chosen), None)
    if template is not None:
        context["draft"] = {"name": template.name, **template.model_dump()}
    return render(request, "reports/list.html", context)


@router.post("")
async def build_report(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Save the report the builder describes (the service checks it) and open it."""
    actor.require("reports:read")
    form = await request.form()
    draft = {"name": form_text(form, "name"), **definition_of(form)}
    try:
        built = await service.build(
            session, actor, request.app.state.settings, BuildIn.model_validate(draft)
        )
    except (ValidationError, LeadflowError) as exc:
        if not _inline(exc):
            raise
        await session.rollback()
        await load_shell(request, session, actor)
        context = await _list_context(session, actor)
        context.update(errors=field_errors(exc), draft=draft)
        return render(request, "reports/list.html", context, status_code=422)
    return redirect(request, f"/crm/reports/{built.report_id}")


async def _report_context(
    request: Request, session: AsyncSession, actor: Actor, report_id: uuid.UUID
) -> dict[str, Any]:
    settings = request.app.state.settings
    report = await service.get_report(session, actor, report_id)
    definition = Definition.model_validate(report.definition)
    columns, rows, row_count = await service.preview(session, actor, settings, definition)
    runs, _ = await service.history(
        session, actor, settings, report_id, PageParams(limit=RUNS_SHOWN, offset=0)
    )
    schedules, _ = await service.list_schedules(
        session, actor, PageParams(limit=20, offset=0), report_id
    )
    return {
        "report": report,
        "definition": definition,
        "columns": columns,
        "rows": rows,
        "row_count": row_count,
        "runs": runs,
        "schedules": [service.schedule_read(s) for s in schedules],
        "formats": FORMATS,
        "may_export": actor.can("leads:export"),
        "errors": {},
        "values": {},
    }


@router.get("/{report_id}")
async def report_page(
    request: Request, session: SessionDep, actor: WebActor, report_id: uuid.UUID
) -> Response:
    """A saved report: its preview, export, schedules and runs."""
    actor.require("reports:read")
    context = await _report_context(request, session, actor, report_id)
    await load_shell(request, session, actor)
    return render(request, "reports/detail.html", context)


@router.post("/{report_id}/export")
async def export_report(
    request: Request, session: SessionDep, actor: WebActor, report_id: uuid.UUID
) -> Response:
    """Run the report into a file now and go to its signed download link."""
    actor.require("reports:read")
    actor.require("leads:export")  # as the API: a report file takes lead data out
    form = await request.form()
    fmt = form_text(form, "format")
    if fmt not in FORMATS:
        fmt = "csv"
    out = await service.export(session, actor, request.app.state.settings, report_id, fmt)
    return redirect(request, local_path(out.download_url))


@router.post("/{report_id}/schedule")
async def schedule_report(
    request: Request, session: SessionDep, actor: WebActor, report_id: uuid.UUID
) -> Response:
    """Mail the report daily, weekly or monthly to members of the organisation."""
    actor.require("reports:read")
    actor.require("leads:export")
    form = await request.form()
    values: dict[str, Any] = {
        "report_id": report_id,
        "frequency": form_text(form, "frequency"),
        "time": form_text(form, "time"),
        "recipients": [r.strip() for r in form_text(form, "recipients").split(",") if r.strip()],
        "format": form_text(form, "format") or "csv",
    }
    for key in ("day_of_week", "day_of_month"):
        if form_text(form, key):
            values[key] = form_text(form, key)
    try:
        await service.create_schedule(
            session, actor, request.app.state.settings, ScheduleIn.model_validate(values)
        )
    except (ValidationError, LeadflowError) as exc:
        if not _inline(exc):
            raise
        await session.rollback()
        context = await _report_context(request, session, actor, report_id)
        context.update(
            errors=field_errors(exc),
            values={**values, "recipients": ", ".join(values["recipients"])},
        )
        await load_shell(request, session, actor)
        return render(request, "reports/detail.html", context, status_code=422)
    return redirect(request, f"/crm/reports/{report_id}")


@router.post("/{report_id}/schedules/{schedule_id}")
async def set_schedule(
    request: Request,
    session: SessionDep,
    actor: WebActor,
    report_id: uuid.UUID,
    schedule_id: uuid.UUID,
) -> Response:
    """Pause, resume or delete a schedule."""
    actor.require("reports:read")
    form = await request.form()
    action = form_text(form, "action")
    if action == "delete":
        await service.delete_schedule(session, actor, schedule_id)
    else:
        status = "paused" if action == "pause" else "active"
        await service.set_schedule_status(session, actor, schedule_id, status)
    return redirect(request, f"/crm/reports/{report_id}")


@router.post("/{report_id}/delete")
async def delete_report(
    request: Request, session: SessionDep, actor: WebActor, report_id: uuid.UUID
) -> Response:
    """Delete a saved report with its schedules, runs and files."""
    actor.require("reports:read")
    await service.delete_report(session, actor, report_id)
    return redirect(request, "/crm/reports")
