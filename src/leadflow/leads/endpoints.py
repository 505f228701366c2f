"""/api/v1/leads (aliases /leads, /api/leads) and /api/v1/tags."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, ValidationError
from pydantic_core import to_json

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.exceptions import ValidationFailed
from leadflow.kit.pagination import MAX_LIMIT, MAX_OFFSET
from leadflow.leads import bulk, export, service
from leadflow.leads.schemas import (
    AssignIn,
    BulkIn,
    BulkOut,
    ConsentIn,
    ConsentRead,
    DuplicateRead,
    ExportIn,
    LeadCreate,
    LeadDetail,
    LeadFilter,
    LeadPage,
    LeadUpdate,
    MergeIn,
    NeedsAction,
    NeedsActionLead,
    NotesUpdate,
    StatusChange,
    TagCount,
)
from leadflow.notifications import lead_assigned

router = APIRouter(tags=["leads"])
tags_router = APIRouter(tags=["leads"])
Reader = Annotated[Actor, Depends(require_permission("leads:read"))]
Writer = Annotated[Actor, Depends(require_permission("leads:write"))]
Assigner = Annotated[Actor, Depends(require_permission("leads:assign"))]
Deleter = Annotated[Actor, Depends(require_permission("leads:delete"))]
Exporter = Annotated[Actor, Depends(require_permission("leads:export"))]


async def lead_filter(
    request: Request,
    q: Annotated[
        str | None, Query(max_length=200, description="Search name, email, phone, company")
    ] = None,
    status_: Annotated[list[str] | None, Query(alias="status")] = None,
    tag: Annotated[list[str] | None, Query()] = None,
    source: str | None = None,
    assigned_to: Annotated[str | None, Query(description="User id, `me` or `none`")] = None,
    # Aware only (422 naming the parameter): a naive bound has no defined meaning.
    date_from: AwareDatetime | None = None,
    date_to: AwareDatetime | None = None,
    needs_action: bool | None = None,
    import_batch_id: uuid.UUID | None = None,
) -> LeadFilter:
    """List filters from the query string; `cf.<key>=value` filters custom fields.

    Async although it awaits nothing: FastAPI runs a plain `def` dependency in a thread.
    """
    custom = {k[3:]: v for k, v in request.query_params.items() if k.startswith("cf.") and k[3:]}
    try:
        return LeadFilter(
            q=q,
            status=status_ or [],
            tag=tag or [],
            source=source,
            assigned_to=assigned_to,
            date_from=date_from,
            date_to=date_to,
            needs_action=needs_action,
            import_batch_id=import_batch_id,
            custom=custom,
        )
    except ValidationError as exc:
        errors = [{"loc": ["query", *map(str, e["loc"])], "msg": e["msg"]} for e in exc.errors()]
        raise ValidationFailed("Invalid filter", errors=errors) from None


Filter = Annotated[LeadFilter, Depends(lead_filter)]


@router.get("", response_model=LeadPage)
async def list_leads(
    request: Request,
    session: SessionDep,
    actor: Reader,
    f: Filter,
    sort: str = "-created_at",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    cursor: str | None = None,
) -> Response:
    """Leads in your scope: filters, sort, offset or keyset (`cursor`) paging."""
    res = await service.list_leads(
        session,
        actor,
        request.app.state.settings,
        f,
        sort=sort,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )
    page = {
        "items": res.items,
        "total": res.total,
        "limit": limit,
        "offset": 0 if cursor else offset,
        "total_is_estimate": res.total_is_estimate,
        "next_cursor": res.next_cursor,
    }
    # The rows hold exactly LeadRead's fields, read from typed columns, so the page is
    # serialised as is (pydantic-core, same JSON as the model) without validating 50 models.
    return Response(to_json(page), media_type="application/json")


@router.post("", response_model=LeadDetail, status_code=status.HTTP_201_CREATED)
async def create_lead(
    request: Request,
    session: SessionDep,
    actor: Writer,
    body: LeadCreate,
    on_duplicate: Literal["reject", "allow"] = "reject",
) -> LeadDetail:
    """Create a lead (409 `duplicate_lead` when email or phone exists, unless allowed; it names
    `existing_id` only when that lead is in your scope)."""
    lead = await service.create_lead(
        session, actor, request.app.state.settings, body, allow_duplicate=on_duplicate == "allow"
    )
    return await service.detail_of(session, lead)


@router.post("/export")
async def export_leads(
    session: SessionDep,
    factory: SessionFactoryDep,
    actor: Exporter,
    body: ExportIn | None = None,
    format: Literal["csv", "xlsx"] = "csv",
) -> StreamingResponse:
    """Stream the filtered leads as CSV (default) or XLSX."""
    return await export.export_response(session, factory, actor, body or ExportIn(), format)


@router.post("/bulk", response_model=BulkOut)
async def bulk_action(
    request: Request, session: SessionDep, actor: Writer, body: BulkIn
) -> BulkOut:
    """Assign, move, tag, untag or delete many leads (by ids or by filter)."""
    return await bulk.apply_action(session, actor, request.app.state.settings, body)


@router.get("/needs-action", response_model=NeedsAction)
async def needs_action(
    session: SessionDep, actor: Reader, limit: Annotated[int, Query(ge=1, le=100)] = 8
) -> NeedsAction:
    """Leads in your scope that need action or have no analysis yet, most urgent first."""
    rows = await service.needing_action(session, actor, limit)
    return NeedsAction(
        leads=[
            NeedsActionLead(
                id=r.id,
                name=r.full_name or r.email or r.phone or "",
                email=r.email,
                phone=r.phone,
                status=r.status,
                next_action_at=r.next_action_at,
                next_action_description=r.next_action_description,
            )
            for r in rows
        ]
    )


@router.get("/{lead_id}", response_model=LeadDetail)
async def get_lead(
    session: SessionDep, actor: Reader, lead_id: uuid.UUID, response: Response
) -> LeadDetail:
    """A lead with notes, stage and latest consent per channel (ETag = version)."""
    detail = await service.lead_detail(session, actor, lead_id)
    response.headers["ETag"] = f'"{detail.version}"'
    return detail


@router.patch("/{lead_id}", response_model=LeadDetail)
async def update_lead(
    request: Request,
    session: SessionDep,
    actor: Writer,
    lead_id: uuid.UUID,
    body: LeadUpdate,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> LeadDetail:
    """Partial update; a stale `version` or `If-Match` is a 409."""
    lead = await service.update_lead(
        session,
        actor,
        request.app.state.settings,
        lead_id,
        body,
        if_match=service.parse_if_match(if_match),
    )
    response.headers["ETag"] = f'"{lead.version}"'
    return await service.detail_of(session, lead)


@router.delete("/{lead_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_lead(session: SessionDep, actor: Deleter, lead_id: uuid.UUID) -> Response:
    """Soft-delete a lead."""
    await service.delete_lead(session, actor, lead_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/{lead_id}/notes", response_model=LeadDetail)
async def update_notes(
    session: SessionDep,
    actor: Writer,
    lead_id: uuid.UUID,
    body: NotesUpdate,
    if_match: Annotated[str | None, Header()] = None,
) -> LeadDetail:
    """Replace the notes text."""
    lead = await service.update_notes(
        session,
        actor,
        lead_id,
        body.notes,
        expected_version=body.version or service.parse_if_match(if_match),
    )
    return await service.detail_of(session, lead)


@router.patch("/{lead_id}/status", response_model=LeadDetail)
@router.post("/{lead_id}/status", response_model=LeadDetail, include_in_schema=False)
async def change_status(
    session: SessionDep, actor: Writer, lead_id: uuid.UUID, body: StatusChange
) -> LeadDetail:
    """Move a lead to a stage (history keeps from, to, who, when, why)."""
    lead = await service.change_status(session, actor, lead_id, body.status, body.reason)
    return await service.detail_of(session, lead)


@router.post("/{lead_id}/assign", response_model=LeadDetail)
@router.patch("/{lead_id}/assign", response_model=LeadDetail, include_in_schema=False)
async def assign_lead(
    request: Request, session: SessionDep, actor: Assigner, lead_id: uuid.UUID, body: AssignIn
) -> LeadDetail:
    """Assign to an active member (null unassigns)."""
    lead = await service.assign(
        session, actor, request.app.state.settings, lead_id, body.assignee_id, body.reason
    )
    return await service.detail_of(session, lead)


@router.post("/{lead_id}/consents", response_model=ConsentRead, status_code=status.HTTP_201_CREATED)
async def add_consent(
    session: SessionDep, actor: Writer, lead_id: uuid.UUID, body: ConsentIn
) -> ConsentRead:
    """Append a consent (granted or revoked) to the ledger."""
    return ConsentRead.model_validate(await service.record_consent(session, actor, lead_id, body))


@router.get("/{lead_id}/consents", response_model=list[ConsentRead])
async def list_consents(
    session: SessionDep, actor: Reader, lead_id: uuid.UUID
) -> list[ConsentRead]:
    """The consent history, newest first."""
    return [ConsentRead.model_validate(c) for c in await service.consents(session, actor, lead_id)]


@router.get("/{lead_id}/duplicates", response_model=list[DuplicateRead])
async def list_duplicates(
    session: SessionDep, actor: Reader, lead_id: uuid.UUID
) -> list[DuplicateRead]:
    """Likely duplicates with a score and reasons."""
    return await service.duplicates(session, actor, lead_id)


@router.post("/{lead_id}/merge", response_model=LeadDetail)
async def merge_leads(
    session: SessionDep, actor: Writer, lead_id: uuid.UUID, body: MergeIn
) -> LeadDetail:
    """Merge other leads into this one (needs `leads:delete` too: the others are removed)."""
    lead = await service.merge(session, actor, lead_id, body.other_ids)
    return await service.detail_of(session, lead)


@tags_router.get("", response_model=list[TagCount])
async def list_tags(session: SessionDep, actor: Reader) -> list[TagCount]:
    """Tags in use with their lead counts."""
    return [TagCount(tag=t, count=c) for t, c in await service.tags(session, actor)]


@router.post("/{lead_id}/resend-email", status_code=status.HTTP_202_ACCEPTED)
async def resend_email(
    request: Request, session: SessionDep, actor: Writer, lead_id: uuid.UUID
) -> dict[str, str]:
    """Send the assignment notification email to the assignee again."""
    key = await lead_assigned.resend(session, actor, request.app.state.settings, lead_id)
    return {"status": "queued", "delivery_key": key}
