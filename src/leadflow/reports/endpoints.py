"""/api/v1/reports: catalogue, templates, saved reports, exports, downloads, schedules, history."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import StreamingResponse

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.reports import service
from leadflow.reports.schemas import (
    BuildIn,
    BuildOut,
    CatalogueRead,
    ExportIn,
    ExportOut,
    ReportRead,
    RunRead,
    ScheduleCreated,
    ScheduleIn,
    ScheduleRead,
    ScheduleUpdate,
    TemplateRead,
)

router = APIRouter(tags=["reports"])
Reader = Annotated[Actor, Depends(require_permission("reports:read"))]


async def _exporter(actor: Reader) -> Actor:
    """Exports and schedules take lead data out of the app, like a lead export: they need
    `leads:export` as well as `reports:read`."""
    actor.require("leads:export")
    return actor


Exporter = Annotated[Actor, Depends(_exporter)]
Paging = Annotated[PageParams, Depends(page_params)]


@router.get("/fields", response_model=CatalogueRead)
async def fields(actor: Reader) -> CatalogueRead:
    """The published catalogue: fields (with their aggregations and operators) and operators."""
    return service.catalogue()


@router.get("/templates", response_model=list[TemplateRead])
async def templates(actor: Reader) -> list[TemplateRead]:
    """Ready-made reports; POST one with a name to /build."""
    return service.templates()


@router.post("/build", response_model=BuildOut, status_code=status.HTTP_201_CREATED)
async def build(request: Request, session: SessionDep, actor: Reader, body: BuildIn) -> BuildOut:
    """Save a report and answer its first rows and row count (within your row scope)."""
    return await service.build(session, actor, request.app.state.settings, body)


@router.post("/export", response_model=ExportOut)
async def export(
    request: Request, session: SessionDep, actor: Exporter, body: ExportIn
) -> ExportOut:
    """Run a saved report into a CSV, XLSX or PDF file; answer a signed download link."""
    return await service.export(
        session, actor, request.app.state.settings, body.report_id, body.format
    )


@router.get("/downloads/{token}", response_class=StreamingResponse)
async def download(
    request: Request, session: SessionDep, factory: SessionFactoryDep, token: str
) -> StreamingResponse:
    """The file of a signed link; needs no bearer token (403 when altered or expired)."""
    file = await service.open_download(session, request.app.state.settings, token)
    return StreamingResponse(
        service.file_chunks(factory, file.run_id),
        media_type=file.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.file_name)}",
            "Content-Length": str(file.size_bytes),
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/schedule", response_model=ScheduleCreated, status_code=status.HTTP_201_CREATED)
async def schedule(
    request: Request, session: SessionDep, actor: Exporter, body: ScheduleIn
) -> ScheduleCreated:
    """Run a saved report daily, weekly or monthly and mail it to the recipients (active
    members of your organisation)."""
    row = await service.create_schedule(session, actor, request.app.state.settings, body)
    return ScheduleCreated(**service.schedule_read(row).model_dump(), schedule_id=row.id)


@router.get("/scheduled", response_model=Page[ScheduleRead])
async def scheduled(
    session: SessionDep, actor: Reader, page: Paging, report_id: uuid.UUID | None = None
) -> Page[ScheduleRead]:
    """Your schedules (an organisation admin: all of the organisation's), newest first."""
    rows, total = await service.list_schedules(session, actor, page, report_id)
    return Page(
        items=[service.schedule_read(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.patch("/scheduled/{schedule_id}", response_model=ScheduleRead)
async def update_schedule(
    session: SessionDep, actor: Reader, schedule_id: uuid.UUID, body: ScheduleUpdate
) -> ScheduleRead:
    """Pause or resume a schedule (yours; an organisation admin: any of the organisation's)."""
    row = await service.set_schedule_status(session, actor, schedule_id, body.status)
    return service.schedule_read(row)


@router.delete("/scheduled/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(session: SessionDep, actor: Reader, schedule_id: uuid.UUID) -> Response:
    """Delete a schedule (yours; an organisation admin: any of the organisation's)."""
    await service.delete_schedule(session, actor, schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/history", response_model=Page[RunRead])
async def history(
    request: Request,
    session: SessionDep,
    actor: Reader,
    page: Paging,
    report_id: uuid.UUID | None = None,
) -> Page[RunRead]:
    """Your runs (exports and scheduled runs), newest first, with download links."""
    items, total = await service.history(
        session, actor, request.app.state.settings, report_id, page
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("", response_model=Page[ReportRead])
async def list_reports(session: SessionDep, actor: Reader, page: Paging) -> Page[ReportRead]:
    """Your saved reports, newest first."""
    rows, total = await service.list_reports(session, actor, page)
    return Page(
        items=[service.report_read(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{report_id}", response_model=ReportRead)
async def get_report(session: SessionDep, actor: Reader, report_id: uuid.UUID) -> ReportRead:
    """A saved report's definition."""
    return service.report_read(await service.get_report(session, actor, report_id))


@router.delete("/{report_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_report(session: SessionDep, actor: Reader, report_id: uuid.UUID) -> Response:
    """Delete a saved report with its schedules, runs and files."""
    await service.delete_report(session, actor, report_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
