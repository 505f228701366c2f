"""The lead page's panels: tasks, duplicates with the merge dialog, the AI panel and call
requests with their live status.

Each panel is an htmx fragment under `/crm/leads/{id}/…`; each action checks the permission of
the API endpoint it mirrors and calls that endpoint's service (tasks, leads, ai, calls). The
lead itself is looked up in the actor's row scope first, so a foreign lead is a 404.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from leadflow.ai import actions
from leadflow.ai.schemas import AnalyzeRequest, GenerateMessageRequest
from leadflow.authz.actor import Actor
from leadflow.calls import service as calls
from leadflow.calls.repository import CallFilter
from leadflow.calls.schemas import CallRequestIn, CallStatus
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.exceptions import LeadflowError, ValidationFailed
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.leads import service as leads
from leadflow.tasks import service as tasks
from leadflow.tasks.repository import TaskFilter
from leadflow.tasks.schemas import TaskCreate
from leadflow.web.forms import field_errors, form_list, form_text
from leadflow.web.session import WebActor
from leadflow.web.templating import redirect, render

router = APIRouter(prefix="/crm/leads/{lead_id}", include_in_schema=False)

TASKS_SHOWN = 20
CALLS_SHOWN = 5
CHANNELS = ("email", "whatsapp", "sms", "phone")
LANGUAGES = ("de", "en")


def _inline(exc: Exception) -> bool:
    """Invalid input (shown in the panel) rather than a 403/404 page."""
    return isinstance(exc, ValidationError) or (
        isinstance(exc, LeadflowError) and exc.status in (409, 422, 429)
    )


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError | LeadflowError):
        errors = field_errors(exc)
        return errors.get("_form") or "; ".join(f"{k}: {v}" for k, v in errors.items())
    return str(exc)


# ---- tasks ----------------------------------------------------------------------------------


async def _tasks(
    request: Request, session: AsyncSession, actor: Actor, lead_id: uuid.UUID, **extra: Any
) -> Response:
    actor.require("tasks:read")
    await leads.get_lead(session, actor, lead_id)
    rows, total = await tasks.list_tasks(
        session, actor, TaskFilter(lead_id=lead_id), PageParams(limit=TASKS_SHOWN, offset=0)
    )
    return render(
        request,
        "leads/_tasks.html",
        {
            "tasks": [tasks.to_read(t) for t in rows],
            "tasks_total": total,
            "lead_id": lead_id,
            "errors": {},
            "values": {},
            **extra,
        },
        status_code=422 if extra.get("errors") else 200,
    )


@router.get("/tasks")
async def tasks_panel(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """The lead's tasks, open ones by due time first."""
    return await _tasks(request, session, actor, lead_id)


def _due(raw: str) -> datetime | None:
    """A due time from the form's `datetime-local` input, read in UTC (the page shows UTC)."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed("due_at must be a date and time", field="due_at") from None
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


@router.post("/tasks")
async def add_task(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """A new task on the lead (assigned to the actor unless the form says otherwise)."""
    actor.require("tasks:write")
    form = await request.form()
    values = {k: form_text(form, k) for k in ("title", "due_at", "priority")}
    try:
        body = TaskCreate.model_validate(
            {
                "title": values["title"],
                "due_at": _due(values["due_at"]),
                "priority": values["priority"] or "normal",
                "lead_id": lead_id,
            }
        )
        await tasks.create_task(session, actor, body)
    except (ValidationError, LeadflowError) as exc:
        if not _inline(exc):
            raise
        await session.rollback()
        errors = field_errors(exc)
        return await _tasks(request, session, actor, lead_id, errors=errors, values=values)
    return await _tasks(request, session, actor, lead_id)


@router.post("/tasks/{task_id}/complete")
async def complete_task(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID, task_id: uuid.UUID
) -> Response:
    """Mark a task done."""
    actor.require("tasks:write")
    await tasks.complete_task(session, actor, task_id)
    return await _tasks(request, session, actor, lead_id)


# ---- duplicates and merge -------------------------------------------------------------------


async def _duplicates(
    request: Request, session: AsyncSession, actor: Actor, lead_id: uuid.UUID, **extra: Any
) -> Response:
    actor.require("leads:read")
    found = await leads.duplicates(session, actor, lead_id)
    return render(
        request,
        "leads/_duplicates.html",
        {
            "duplicates": found,
            "lead_id": lead_id,
            "may_merge": actor.can("leads:write") and actor.can("leads:delete"),
            **extra,
        },
    )


@router.get("/duplicates")
async def duplicates_panel(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """Likely duplicates with their score and reasons."""
    return await _duplicates(request, session, actor, lead_id)


@router.post("/merge")
async def merge(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """Merge the chosen duplicates into this lead (the leads service's merge), then reload."""
    actor.require("leads:write")
    form = await request.form()
    ids: list[uuid.UUID] = []
    for raw in form_list(form, "other_ids"):
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            raise ValidationFailed("other_ids must be lead ids", field="other_ids") from None
    if not ids:
        return await _duplicates(
            request, session, actor, lead_id, merge_error="Choose at least one lead to merge"
        )
    await leads.merge(session, actor, lead_id, ids)
    return redirect(request, f"/crm/leads/{lead_id}")


# ---- AI panel -------------------------------------------------------------------------------


async def _ai(
    request: Request,
    session: AsyncSession,
    sessions: Any,
    actor: Actor,
    body: GenerateMessageRequest | AnalyzeRequest,
) -> Any:
    runtime = await actions.app_runtime(request.app.state)
    settings = request.app.state.settings
    return await actions.run_action(session, sessions, settings, runtime, actor, body)


@router.post("/ai/draft")
async def ai_draft(
    request: Request,
    session: SessionDep,
    sessions: SessionFactoryDep,
    actor: WebActor,
    lead_id: uuid.UUID,
) -> Response:
    """A follow-up draft for the chosen channel and language, with the DISG and consent
    warnings of the AI service."""
    actor.require("ai:use")
    form = await request.form()
    channel, language = form_text(form, "channel"), form_text(form, "language")
    try:
        body = GenerateMessageRequest.model_validate(
            {
                "action": "generate_message",
                "data": {
                    "lead_id": lead_id,
                    "channel": channel or None,
                    "language": language or None,
                    "messages": [{"role": "user", "content": form_text(form, "hint")}]
                    if form_text(form, "hint")
                    else [],
                },
            }
        )
        answer = await _ai(request, session, sessions, actor, body)
    except (ValidationError, LeadflowError) as exc:
        if not _inline(exc):
            raise
        await session.rollback()
        return render(
            request, "leads/_ai_result.html", {"ai_error": _message(exc)}, status_code=422
        )
    return render(request, "leads/_ai_result.html", {"draft": answer, "lead_id": lead_id})


@router.post("/ai/analyze")
async def ai_analyze(
    request: Request,
    session: SessionDep,
    sessions: SessionFactoryDep,
    actor: WebActor,
    lead_id: uuid.UUID,
) -> Response:
    """Analyse the lead (stage, urgency, next step, score); `apply` writes the result."""
    actor.require("ai:use")
    form = await request.form()
    apply = form_text(form, "apply") == "true"
    try:
        body = AnalyzeRequest.model_validate(
            {"action": "analyze_lead", "data": {"lead_id": lead_id, "apply": apply}}
        )
        answer = await _ai(request, session, sessions, actor, body)
    except (ValidationError, LeadflowError) as exc:
        if not _inline(exc):
            raise
        await session.rollback()
        return render(
            request, "leads/_ai_result.html", {"ai_error": _message(exc)}, status_code=422
        )
    return render(
        request,
        "leads/_ai_result.html",
        {"analysis": answer, "lead_id": lead_id, "may_apply": actor.can("leads:write")},
    )


# ---- call requests --------------------------------------------------------------------------


async def _calls(
    request: Request, session: AsyncSession, actor: Actor, lead_id: uuid.UUID, **extra: Any
) -> Response:
    actor.require("calls:read")
    lead = await leads.get_lead(session, actor, lead_id)
    rows, _ = await calls.list_requests(
        session, actor, CallFilter(lead_id=lead_id), PageParams(limit=CALLS_SHOWN, offset=0)
    )
    live = any(CallStatus(r.status) not in calls.FINAL for r in rows)
    return render(
        request,
        "leads/_calls.html",
        {
            "calls": rows,
            "live": live,
            "lead_id": lead_id,
            "lead_phone": lead.phone or "",
            "may_call": actor.can("calls:write"),
            **extra,
        },
        status_code=422 if extra.get("call_error") else 200,
    )


@router.get("/calls")
async def calls_panel(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """The lead's latest call requests; htmx polls it while one is still going."""
    return await _calls(request, session, actor, lead_id)


@router.post("/calls")
async def request_call(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID
) -> Response:
    """Ask for a call to the lead (the calls service: limits, business hours, countries)."""
    actor.require("calls:write")
    lead = await leads.get_lead(session, actor, lead_id)
    form = await request.form()
    number = form_text(form, "number") or lead.phone or ""
    try:
        body = CallRequestIn.model_validate(
            {
                # A fresh id per press: the form is the client, each press one request.
                "request_id": f"web-{uuid.uuid4()}",
                "user_id": str(actor.user_id),
                "title": form_text(form, "title") or f"Call {lead.full_name or number}",
                "description": form_text(form, "description"),
                "callback_number": number,
                "number_to_call": number,
                "preferred_time": form_text(form, "preferred_time") or "as soon as possible",
                "lead_id": lead_id,
            }
        )
        await calls.submit(session, actor, request.app.state.settings, body)
    except (ValidationError, LeadflowError) as exc:
        if not _inline(exc):
            raise
        await session.rollback()
        return await _calls(request, session, actor, lead_id, call_error=_message(exc))
    return await _calls(request, session, actor, lead_id)


@router.post("/calls/{call_id}/cancel")
async def cancel_call(
    request: Request, session: SessionDep, actor: WebActor, lead_id: uuid.UUID, call_id: str
) -> Response:
    """Cancel a call request that has not finished."""
    actor.require("calls:write")
    await calls.cancel(session, actor, call_id)
    return await _calls(request, session, actor, lead_id)
