"""Lead pages: the list (search, filters, sort, keyset paging, bulk actions, export, the
needs-action sidebar) and a lead's page (fields, stage, assignee, tags, timeline).

Every read and write goes through the leads service the API uses, with the permission the
matching API endpoint requires checked first (`actor.require`), so a page never offers more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from leadflow.authz.actor import Actor
from leadflow.customfields import service as customfields
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.exceptions import Conflict, ValidationFailed
from leadflow.kit.pagination import PageParams
from leadflow.leads import bulk, export, saved_views, service
from leadflow.leads.schemas import BulkIn, ExportIn, LeadFilter, LeadUpdate
from leadflow.models.user import User
from leadflow.pipeline import service as pipeline
from leadflow.timeline import service as timeline
from leadflow.timeline.registry import sources as timeline_sources
from leadflow.users import service as users
from leadflow.users.repository import UserFilter
from leadflow.web.forms import field_errors, form_list, form_text
from leadflow.web.i18n import language_of, translator
from leadflow.web.session import WebActor
from leadflow.web.templating import is_htmx, load_shell, query_string, redirect, render

router = APIRouter(prefix="/crm/leads", include_in_schema=False)

PAGE_SIZE = 25
NEEDS_ACTION_SHOWN = 8
TIMELINE_SHOWN = 30
# The list's sort choices (label, sort key); the API accepts the same keys.
SORTS: tuple[tuple[str, str], ...] = (
    ("Newest first", "-created_at"),
    ("Oldest first", "created_at"),
    ("Recently updated", "-updated_at"),
    ("Name A–Z", "name"),
    ("Highest score", "-score"),
    ("Next action due", "next_action_at"),
)
_SORT_KEYS = frozenset(key for _, key in SORTS)
# Sorts on a column that may be empty page by offset (the API refuses a cursor for them).
_OFFSET_SORTS = frozenset({"next_action_at"})
_FILTER_KEYS = ("q", "status", "tag", "source", "assigned_to", "needs_action")
# Custom field filters travel as `cf.<key>=value`, the API's list parameter.
CUSTOM_PREFIX = "cf."
BULK_ACTIONS = ("assign", "status", "tag_add", "tag_remove", "delete")
# Fields of the lead form, all optional text inputs of `LeadUpdate`.
EDITABLE = ("first_name", "last_name", "email", "phone", "company", "source", "channel")


@dataclass(frozen=True, slots=True)
class ListView:
    """What the list shows: its filter values (as given, `cf.<key>` ones included), sort and
    page position."""

    values: dict[str, str]
    sort: str
    cursor: str | None
    offset: int

    def query(self) -> str:
        """The view's filters and sort as the list's query string (no page position)."""
        return query_string(**self.values, sort=self.sort)

    def filter(self) -> LeadFilter:
        """The `LeadFilter` of the view (its validation is the API's)."""
        v = self.values
        try:
            return LeadFilter(
                q=v.get("q") or None,
                status=[v["status"]] if v.get("status") else [],
                tag=[v["tag"]] if v.get("tag") else [],
                source=v.get("source") or None,
                assigned_to=v.get("assigned_to") or None,
                needs_action=True if v.get("needs_action") else None,
                custom={
                    k[len(CUSTOM_PREFIX) :]: value
                    for k, value in v.items()
                    if k.startswith(CUSTOM_PREFIX) and value
                },
            )
        except ValidationError as exc:
            errors = [
                {"loc": ["query", *map(str, e["loc"])], "msg": e["msg"]} for e in exc.errors()
            ]
            raise ValidationFailed("Invalid filter", errors=errors) from None


def list_view(params: Any) -> ListView:
    """The list's view from a query string or a form (unknown sorts fall back to newest)."""
    values = {k: str(params.get(k) or "").strip() for k in _FILTER_KEYS}
    for key in params:
        if key.startswith(CUSTOM_PREFIX) and len(key) > len(CUSTOM_PREFIX):
            value = str(params.get(key) or "").strip()
            if value:
                values[key] = value
    sort = str(params.get("sort") or "-created_at")
    if sort not in _SORT_KEYS:
        sort = "-created_at"
    cursor = str(params.get("cursor") or "") or None
    try:
        offset = max(0, min(int(str(params.get("offset") or 0)), 100_000))
    except ValueError:
        offset = 0
    return ListView(values, sort, cursor, offset)


async def _members(session: AsyncSession, actor: Actor) -> list[User]:
    """Active members for assignee choices (none without `users:read`, as in the API)."""
    if not actor.can("users:read"):
        return []
    rows, _ = await users.list_users(
        session, actor, UserFilter(status="active"), PageParams(limit=200, offset=0)
    )
    return rows


async def _results_context(
    request: Request, session: AsyncSession, actor: Actor, view: ListView
) -> dict[str, Any]:
    actor.require("leads:read")
    offset_paging = view.sort in _OFFSET_SORTS
    res = await service.list_leads(
        session,
        actor,
        request.app.state.settings,
        view.filter(),
        sort=view.sort,
        limit=PAGE_SIZE,
        offset=view.offset if offset_paging or not view.cursor else 0,
        cursor=None if offset_paging else view.cursor,
    )
    base = {**view.values, "sort": view.sort}
    next_url: str | None = None
    if offset_paging:
        if view.offset + len(res.items) < res.total:
            next_url = "/crm/leads?" + query_string(**base, offset=view.offset + PAGE_SIZE)
    elif res.next_cursor:
        next_url = "/crm/leads?" + query_string(**base, cursor=res.next_cursor)
    stages = await pipeline.list_stages(session, actor)
    return {
        "leads": res.items,
        "total": res.total,
        "estimate": res.total_is_estimate,
        "values": view.values,
        "sort": view.sort,
        "next_url": next_url,
        "first_url": "/crm/leads?" + query_string(**base) if view.cursor or view.offset else None,
        "stage_names": {s.key: s.name for s in stages},
        "stages": stages,
        "members": await _members(session, actor),
        # The tag and custom field inputs stay folded unless one of them is in use.
        "more_filters": any(
            k == "tag" or k.startswith(CUSTOM_PREFIX) for k, v in view.values.items() if v
        ),
        "custom_fields": await customfields.list_fields(session, actor.organization_id),
        "bulk_actions": [a for a in BULK_ACTIONS if _may_bulk(actor, a)],
        "may_export": actor.can("leads:export"),
        "may_save_view": actor.user_id is not None,
    }


@router.get("")
async def list_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """The lead list; htmx asks for the results only (search as you type, filters, paging)."""
    view = list_view(request.query_params)
    context = await _results_context(request, session, actor, view)
    if is_htmx(request):
        return render(request, "leads/_results.html", context)
    await load_shell(request, session, actor)
    context.update(
        sorts=SORTS,
        saved_views=await saved_views.list_views(session, actor) if actor.user_id else [],
        needs_action=await service.needing_action(session, actor, NEEDS_ACTION_SHOWN),
    )
    return render(request, "leads/list.html", context)


def _may_bulk(actor: Actor, action: str) -> bool:
    needed = {"assign": "leads:assign", "delete": "leads:delete"}.get(action, "leads:write")
    return actor.can("leads:write") and actor.can(needed)


@router.post("/bulk")
async def bulk_action(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Apply a bulk action to the checked leads (the API's bulk service and permissions)."""
    actor.require("leads:write")
    form = await request.form()
    view = list_view(form)
    ids = [_uuid(v) for v in form_list(form, "ids")]
    action = form_text(form, "action")
    if action not in BULK_ACTIONS:
        raise ValidationFailed("Choose an action", field="action")
    if not ids:
        return await _bulk_answer(request, session, actor, view, "Select at least one lead", True)
    value: Any = form_text(form, "value") or None
    try:
        data = BulkIn(ids=[i for i in ids if i is not None], action=action, value=value)
        out = await bulk.apply_action(session, actor, request.app.state.settings, data)
    except ValidationError:
        raise ValidationFailed("Invalid bulk action", field="value") from None
    except ValidationFailed as exc:
        await session.rollback()
        return await _bulk_answer(request, session, actor, view, exc.detail, True)
    _ = translator(language_of(request))
    message = _("{n} of {m} leads updated", n=out.updated, m=out.matched)
    return await _bulk_answer(request, session, actor, view, message, False)


async def _bulk_answer(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    view: ListView,
    message: str,
    failed: bool,
) -> Response:
    context = await _results_context(request, session, actor, view)
    context.update(message=message, failed=failed)
    return render(request, "leads/_results.html", context, status_code=422 if failed else 200)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@router.post("/export")
async def export_view(
    request: Request, session: SessionDep, factory: SessionFactoryDep, actor: WebActor
) -> Response:
    """Download the current view as CSV or XLSX (the API's audited export)."""
    form = await request.form()
    view = list_view(form)
    fmt: Literal["csv", "xlsx"] = "xlsx" if form_text(form, "format") == "xlsx" else "csv"
    f = view.filter()
    return await export.export_response(
        session, factory, actor, ExportIn(**f.model_dump(), sort=view.sort), fmt
    )


# ---- a lead's page ---------------------------------------------------------------------------


async def _lead_context(session: AsyncSession, actor: Actor, lead_id: uuid.UUID) -> dict[str, Any]:
    actor.require("leads:read")
    detail = await service.lead_detail(session, actor, lead_id)
    stages = await pipeline.list_stages(session, actor)
    members = await _members(session, actor)
    return {
        "lead": detail,
        "stages": stages,
        "members": members,
        "member_names": {m.id: m.full_name for m in members},
        "errors": {},
        "values": {},
    }


@router.get("/{lead_id}")
async def lead_page(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """A lead: editable fields, stage, assignee, tags, consents and the timeline."""
    context = await _lead_context(session, actor, lead_id)
    await load_shell(request, session, actor)
    items, total = await timeline.timeline(
        session, actor, lead_id, PageParams(limit=TIMELINE_SHOWN, offset=0)
    )
    context.update(
        timeline=items,
        timeline_total=total,
        timeline_kinds=sorted(timeline_sources()),
        kinds=[],
        kinds_query="",
    )
    return render(request, "leads/detail.html", context)


def _update_of(form: FormData) -> dict[str, Any]:
    """The submitted fields as the API's PATCH body (empty text clears a field)."""
    body: dict[str, Any] = {k: (form_text(form, k) or None) for k in EDITABLE}
    body["tags"] = [t.strip() for t in form_text(form, "tags").split(",") if t.strip()]
    body["notes"] = form_text(form, "notes") or None
    version = form_text(form, "version")
    if version:
        body["version"] = version
    return body


@router.post("/{lead_id}")
async def save_lead(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """Save the lead form; the API's validation messages appear at their fields."""
    actor.require("leads:write")
    form = await request.form()
    body = _update_of(form)
    errors: dict[str, str] = {}
    try:
        data = LeadUpdate.model_validate(body)
        await service.update_lead(session, actor, request.app.state.settings, lead_id, data)
    except ValidationError as exc:
        errors = field_errors(exc)
    except ValidationFailed as exc:
        await session.rollback()
        errors = field_errors(exc)
    except Conflict as exc:
        await session.rollback()
        errors = {"_form": exc.detail}
    context = await _lead_context(session, actor, lead_id)
    if errors:
        context.update(errors=errors, values=body)
        return render(request, "leads/_form.html", context, status_code=422)
    context["saved"] = True
    return render(request, "leads/_form.html", context)


@router.post("/{lead_id}/status")
async def move_lead(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """Move the lead to another stage (status history through the leads service)."""
    actor.require("leads:write")
    form = await request.form()
    stage = form_text(form, "status")
    reason = form_text(form, "reason")[:500] or None
    error: str | None = None
    try:
        await service.change_status(session, actor, lead_id, stage, reason)
    except ValidationFailed as exc:
        await session.rollback()
        error = exc.detail
    if form_text(form, "from") == "board":
        # The board moves its card itself (drag and drop); a plain form goes back to it.
        if not is_htmx(request):
            if error is not None:
                raise ValidationFailed(error)
            return redirect(request, "/crm/pipeline")
        return Response(status_code=204) if error is None else _board_error(request, error)
    return await _after_change(request, session, actor, lead_id, error)


def _board_error(request: Request, error: str) -> Response:
    return render(
        request,
        "_flash.html",
        {"level": "error", "kind": "bad", "detail": error},
        status_code=422,
        headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
    )


@router.post("/{lead_id}/assign")
async def assign_lead(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """Assign (or unassign) the lead to an active member."""
    actor.require("leads:assign")
    form = await request.form()
    raw = form_text(form, "assignee_id")
    assignee = _uuid(raw) if raw else None
    error: str | None = None
    if raw and assignee is None:
        error = "The assignee must be an active user of this organisation"
    else:
        try:
            await service.assign(
                session, actor, request.app.state.settings, lead_id, assignee, None
            )
        except ValidationFailed as exc:
            await session.rollback()
            error = exc.detail
    return await _after_change(request, session, actor, lead_id, error)


async def _after_change(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    lead_id: uuid.UUID,
    error: str | None,
) -> Response:
    if not is_htmx(request):
        if error is not None:
            raise ValidationFailed(error)
        return redirect(request, f"/crm/leads/{lead_id}")
    context = await _lead_context(session, actor, lead_id)
    context["side_error"] = error
    return render(request, "leads/_side.html", context, status_code=422 if error else 200)


@router.post("/{lead_id}/delete")
async def delete_lead(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """Delete the lead (soft delete, as the API) and go back to the list."""
    actor.require("leads:delete")
    await service.delete_lead(session, actor, lead_id)
    return redirect(request, "/crm/leads")


@router.get("/{lead_id}/timeline")
async def lead_timeline(
    request: Request,
    session: SessionDep,
    actor: WebActor,
    lead_id: uuid.UUID,
    offset: int = 0,
    kind: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """The timeline, only some kinds if asked (htmx: the kind toggles and "Load more")."""
    actor.require("leads:read")
    kinds = [k for k in kind or [] if k]
    items, total = await timeline.timeline(
        session, actor, lead_id, PageParams(limit=TIMELINE_SHOWN, offset=max(0, offset)), kinds
    )
    return render(
        request,
        "leads/_timeline.html",
        {
            "timeline": items,
            "timeline_total": total,
            "offset": offset,
            "lead_id": lead_id,
            "kinds": kinds,
            "kinds_query": query_string(kind=kinds),
        },
    )
