"""Saved views of the lead list: save the current filters under a name, open, delete.

A view is its owner's alone (anyone else's id is a 404). Its query string is checked with the
list's own filter (the API's `LeadFilter`) when it is saved and again when it is opened.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams
from starlette.responses import Response

from leadflow.db.session import SessionDep
from leadflow.exceptions import ValidationFailed
from leadflow.leads import saved_views
from leadflow.web.forms import form_text
from leadflow.web.routes.leads import list_view
from leadflow.web.session import WebActor
from leadflow.web.templating import is_htmx, redirect, render

router = APIRouter(prefix="/crm/views", include_in_schema=False)


def _checked(query: str) -> str:
    """`query` as the list reads it, refused (422) when the list's filter refuses it."""
    view = list_view(QueryParams(query))
    view.filter()
    return view.query()


async def _answer(
    request: Request, session: SessionDep, actor: WebActor, error: str | None = None
) -> Response:
    if not is_htmx(request):
        if error is not None:
            raise ValidationFailed(error, field="name")
        return redirect(request, "/crm/leads")
    views = await saved_views.list_views(session, actor)
    return render(
        request,
        "leads/_saved_views.html",
        {"saved_views": views, "view_error": error},
        status_code=422 if error else 200,
    )


@router.post("")
async def save_view(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Save the list's current filters and sort (the form's hidden fields) under a name."""
    actor.require("leads:read")
    form = await request.form()
    view = list_view(form)
    view.filter()  # an invalid filter is a 422 before anything is stored
    try:
        await saved_views.create_view(session, actor, form_text(form, "name"), view.query())
    except ValidationFailed as exc:
        await session.rollback()
        return await _answer(request, session, actor, exc.detail)
    return await _answer(request, session, actor)


@router.get("/{view_id}")
async def open_view(
    request: Request, session: SessionDep, actor: WebActor, view_id: uuid.UUID
) -> Response:
    """Open a saved view: the list with its filters."""
    actor.require("leads:read")
    view = await saved_views.get_view(session, actor, view_id)
    query = _checked(view.query)
    return redirect(request, "/crm/leads" + (f"?{query}" if query else ""))


@router.post("/{view_id}/delete")
async def delete_view(
    request: Request, session: SessionDep, actor: WebActor, view_id: uuid.UUID
) -> Response:
    """Delete one of the user's views."""
    actor.require("leads:read")
    await saved_views.delete_view(session, actor, view_id)
    return await _answer(request, session, actor)
