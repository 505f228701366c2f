"""Admin pages under `/admin/`: users and invitations, roles, API keys, webhooks (deliveries,
replay, test), integrations, the audit log, jobs and emails, and system health.

Each page checks the permission of the API endpoint it mirrors before it calls that
endpoint's service (`admin:users`, `admin:roles`, `admin:api_keys`, `admin:settings`,
`admin:audit`; system health also the operator check), so the pages never offer more than the
API. Forms post and redirect back with a message key (`?done=`); a refused form is shown again
with the service's messages.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from leadflow.accounts import service as accounts
from leadflow.accounts.schemas import AdminUserCreate
from leadflow.audit import service as audit
from leadflow.audit.repository import AuditFilter
from leadflow.auth import api_keys
from leadflow.auth.api_keys import ApiKeyCreate
from leadflow.authz.actor import Actor
from leadflow.authz.permissions import ALL_PERMISSIONS, PERMISSION_DESCRIPTIONS, RowScope
from leadflow.db.engine import unit_of_work
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.exceptions import LeadflowError, ValidationFailed
from leadflow.health import service as health
from leadflow.integrations import registry
from leadflow.integrations import service as integrations
from leadflow.integrations.schemas import ConnectIn
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.organizations import service as orgs
from leadflow.organizations.schemas import RoleUpdate
from leadflow.users.repository import UserFilter
from leadflow.web.forms import field_errors, form_list, form_text
from leadflow.web.session import WebActor
from leadflow.web.templating import load_shell, query_string, redirect, render
from leadflow.webhooks import delivery
from leadflow.webhooks import service as webhooks
from leadflow.webhooks.catalogue import EVENTS
from leadflow.webhooks.schemas import EndpointCreate, EndpointUpdate
from leadflow.worker import admin as outbox
from leadflow.worker.jobs import get_queue

router = APIRouter(prefix="/admin", include_in_schema=False)

USERS_SHOWN = 50
AUDIT_SHOWN = 50
JOBS_SHOWN = 50
DELIVERIES_SHOWN = 30
# The sections of the admin area: path, title, the permission the API asks for.
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("users", "Users", "admin:users"),
    ("roles", "Roles", "admin:roles"),
    ("api-keys", "API keys", "admin:api_keys"),
    ("webhooks", "Webhooks", "admin:settings"),
    ("integrations", "Integrations", "admin:settings"),
    ("audit", "Audit log", "admin:audit"),
    ("jobs", "Jobs and emails", "admin:settings"),
    ("health", "System health", "admin:settings"),
)
# Messages a redirect may ask for (`?done=`), never free text from the address.
DONE = {
    "invited": "Invitation sent",
    "created": "Saved",
    "deactivated": "Member deactivated",
    "saved": "Saved",
    "revoked": "Key revoked",
    "replayed": "Delivery queued again",
    "retried": "Job queued again",
    "disconnected": "Integration disconnected",
}


async def _page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    section: str,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    await load_shell(request, session, actor)
    done = DONE.get(str(request.query_params.get("done") or ""))
    return render(
        request,
        template,
        {
            "sections": [(p, t) for p, t, perm in SECTIONS if actor.can(perm)],
            "section": section,
            "done": done,
            "errors": {},
            "values": {},
            **context,
        },
        status_code=status_code,
    )


def _uuid(raw: str, field: str) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationFailed(f"{field} must be an id", field=field) from None


@router.get("")
async def admin_index(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """The first admin section the actor may open."""
    for path, _, perm in SECTIONS:
        if actor.can(perm):
            return redirect(request, f"/admin/{path}")
    actor.require("admin:users")  # none: 403 as the API would answer
    raise AssertionError  # pragma: no cover (require raised)


# ---- users and invitations ------------------------------------------------------------------


async def _users_context(session: AsyncSession, actor: Actor, request: Request) -> dict[str, Any]:
    search = str(request.query_params.get("q") or "").strip()[:200] or None
    listed = await accounts.list_members(
        session, actor, UserFilter(search, None, None), PageParams(limit=USERS_SHOWN, offset=0)
    )
    roles = await orgs.list_roles(session, actor)
    active = [u for u in listed.users if u.status == "active"]
    return {
        "users": listed.users,
        "total": listed.total,
        "q": search or "",
        "roles": roles,
        "active": active,
    }


@router.get("/users")
async def users_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Members with their status, the invitation form and deactivation."""
    actor.require("admin:users")
    context = await _users_context(session, actor, request)
    return await _page(request, session, actor, "users", "admin/users.html", context)


@router.post("/users")
async def invite_member(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """A new member who gets an invitation email (the API's create with `send_invite`)."""
    actor.require("admin:users")
    form = await request.form()
    values = {k: form_text(form, k) for k in ("full_name", "email", "role", "phone")}
    try:
        body = AdminUserCreate.model_validate(
            {**{k: v for k, v in values.items() if v}, "send_invite": True}
        )
        await accounts.create_member(session, actor, request.app.state.settings, body)
    except (ValidationError, LeadflowError) as exc:
        if not _inline(exc):
            raise
        await session.rollback()
        context = await _users_context(session, actor, request)
        context.update(errors=_errors(exc), values=values)
        return await _page(
            request, session, actor, "users", "admin/users.html", context, status_code=422
        )
    return redirect(request, "/admin/users?done=invited")


@router.post("/users/{user_id}/invite")
async def reinvite_member(
    request: Request, session: SessionDep, actor: WebActor, user_id: uuid.UUID
) -> Response:
    """A fresh invitation for a member without a password."""
    actor.require("admin:users")
    await accounts.invite(session, actor, request.app.state.settings, user_id)
    return redirect(request, "/admin/users?done=invited")


@router.post("/users/{user_id}/deactivate")
async def deactivate_member(
    request: Request, session: SessionDep, actor: WebActor, user_id: uuid.UUID
) -> Response:
    """Deactivate a member; their open leads go to the chosen colleague or by the rules."""
    actor.require("admin:users")
    form = await request.form()
    target = _uuid(form_text(form, "reassign_to"), "reassign_to")
    await accounts.deactivate_member(session, actor, request.app.state.settings, user_id, target)
    return redirect(request, "/admin/users?done=deactivated")


def _inline(exc: Exception) -> bool:
    """Whether a refused form is shown again with the messages (invalid or conflicting
    input); a missing permission or a foreign row stays the 403/404 page."""
    return isinstance(exc, ValidationError) or (
        isinstance(exc, LeadflowError) and exc.status in (409, 422)
    )


def _errors(exc: Exception) -> dict[str, str]:
    if isinstance(exc, ValidationError | LeadflowError):
        return field_errors(exc)
    return {"_form": str(exc)}


# ---- roles ----------------------------------------------------------------------------------


@router.get("/roles")
async def roles_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Roles with their permissions and row scope."""
    actor.require("admin:roles")
    roles = await orgs.list_roles(session, actor)
    return await _page(request, session, actor, "roles", "admin/roles.html", {"roles": roles})


async def _role_context(session: AsyncSession, actor: Actor, role_id: uuid.UUID) -> dict[str, Any]:
    role = await orgs.get_role(session, actor, role_id)
    return {
        "role": role,
        "permissions": [(p, PERMISSION_DESCRIPTIONS[p]) for p in ALL_PERMISSIONS],
        "scopes": [s.value for s in RowScope],
    }


@router.get("/roles/{role_id}")
async def role_page(
    request: Request, session: SessionDep, actor: WebActor, role_id: uuid.UUID
) -> Response:
    """One role's permissions as checkboxes (system roles read-only, as in the API)."""
    actor.require("admin:roles")
    context = await _role_context(session, actor, role_id)
    return await _page(request, session, actor, "roles", "admin/role.html", context)


@router.post("/roles/{role_id}")
async def save_role(
    request: Request, session: SessionDep, actor: WebActor, role_id: uuid.UUID
) -> Response:
    """Change a custom role's description, permissions and row scope."""
    actor.require("admin:roles")
    form = await request.form()
    body = {
        "description": form_text(form, "description"),
        "permissions": form_list(form, "permissions"),
        "row_scope": form_text(form, "row_scope") or None,
    }
    try:
        await orgs.update_role(session, actor, role_id, RoleUpdate.model_validate(body))
    except (ValidationError, ValidationFailed) as exc:
        await session.rollback()
        context = await _role_context(session, actor, role_id)
        context.update(errors=_errors(exc), values=body)
        return await _page(
            request, session, actor, "roles", "admin/role.html", context, status_code=422
        )
    return redirect(request, f"/admin/roles/{role_id}?done=saved")


# ---- API keys -------------------------------------------------------------------------------


async def _keys_context(session: AsyncSession, actor: Actor) -> dict[str, Any]:
    keys = await api_keys.list_keys(session, actor)
    grantable = [p for p in ALL_PERMISSIONS if p in actor.permissions]
    return {"keys": keys, "grantable": grantable, "created": None}


@router.get("/api-keys")
async def keys_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """The organisation's keys (prefix and last use) and the form for a new one."""
    actor.require("admin:api_keys")
    context = await _keys_context(session, actor)
    return await _page(request, session, actor, "api-keys", "admin/api_keys.html", context)


@router.post("/api-keys")
async def create_key(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Issue a key; the answer shows it this once (the page is not cached)."""
    actor.require("admin:api_keys")
    form = await request.form()
    values: dict[str, Any] = {"name": form_text(form, "name")}
    if form_list(form, "scopes"):  # none chosen: the API's default scopes
        values["scopes"] = form_list(form, "scopes")
    created = None
    errors: dict[str, str] = {}
    try:
        created = await api_keys.create_key(session, actor, ApiKeyCreate.model_validate(values))
    except (ValidationError, LeadflowError) as exc:
        if not _inline(exc):
            raise
        await session.rollback()
        errors = _errors(exc)
    context = await _keys_context(session, actor)
    context.update(created=created, errors=errors, values=values if errors else {})
    return await _page(
        request,
        session,
        actor,
        "api-keys",
        "admin/api_keys.html",
        context,
        status_code=422 if errors else 200,
    )


@router.post("/api-keys/{key_id}/revoke")
async def revoke_key(
    request: Request, session: SessionDep, actor: WebActor, key_id: uuid.UUID
) -> Response:
    """Revoke a key at once."""
    actor.require("admin:api_keys")
    await api_keys.revoke_key(session, actor, key_id)
    return redirect(request, "/admin/api-keys?done=revoked")


# ---- webhooks -------------------------------------------------------------------------------


def _endpoint_body(form: FormData) -> dict[str, Any]:
    body: dict[str, Any] = {
        "endpoint_url": form_text(form, "endpoint_url"),
        "events": form_list(form, "events"),
        "description": form_text(form, "description") or None,
    }
    return body


async def _hooks_context(session: AsyncSession, actor: Actor) -> dict[str, Any]:
    items, total = await webhooks.list_endpoints(session, actor, PageParams(limit=100, offset=0))
    return {"endpoints": items, "total": total, "events": list(EVENTS), "created": None}


@router.get("/webhooks")
async def webhooks_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Endpoints with their state and the form for a new one."""
    actor.require("admin:settings")
    context = await _hooks_context(session, actor)
    return await _page(request, session, actor, "webhooks", "admin/webhooks.html", context)


@router.post("/webhooks")
async def create_webhook(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Subscribe a URL; the signing secret is shown this once."""
    actor.require("admin:settings")
    form = await request.form()
    values = _endpoint_body(form)
    created = None
    errors: dict[str, str] = {}
    try:
        body = EndpointCreate.model_validate(values)
        created = await webhooks.create_endpoint(session, request.app.state.settings, actor, body)
    except (ValidationError, ValidationFailed) as exc:
        await session.rollback()
        errors = _errors(exc)
    context = await _hooks_context(session, actor)
    context.update(created=created, errors=errors, values=values if errors else {})
    return await _page(
        request,
        session,
        actor,
        "webhooks",
        "admin/webhooks.html",
        context,
        status_code=422 if errors else 200,
    )


async def _hook_context(
    request: Request, session: AsyncSession, actor: Actor, endpoint_id: uuid.UUID
) -> dict[str, Any]:
    endpoint = await webhooks.get_endpoint(session, actor, endpoint_id)
    status = str(request.query_params.get("status") or "") or None
    if status not in (None, "pending", "retry", "delivered", "failed"):
        status = None
    items, total = await webhooks.list_deliveries(
        session, actor, endpoint_id, PageParams(limit=DELIVERIES_SHOWN, offset=0), status
    )
    return {
        "endpoint": endpoint,
        "deliveries": items,
        "deliveries_total": total,
        "status": status or "",
        "events": list(EVENTS),
        "tested": None,
        "values": {
            "endpoint_url": endpoint.endpoint_url,
            "description": endpoint.description or "",
            "events": endpoint.events,
        },
    }


@router.get("/webhooks/{endpoint_id}")
async def webhook_page(
    request: Request, session: SessionDep, actor: WebActor, endpoint_id: uuid.UUID
) -> Response:
    """An endpoint: edit form, test, and its delivery log with replay."""
    actor.require("admin:settings")
    context = await _hook_context(request, session, actor, endpoint_id)
    return await _page(request, session, actor, "webhooks", "admin/webhook.html", context)


@router.post("/webhooks/{endpoint_id}")
async def save_webhook(
    request: Request, session: SessionDep, actor: WebActor, endpoint_id: uuid.UUID
) -> Response:
    """Change URL, events, description or status (`active` re-enables a disabled one)."""
    actor.require("admin:settings")
    form = await request.form()
    values = _endpoint_body(form)
    if form_text(form, "status"):
        values["status"] = form_text(form, "status")
    if values["description"] is None:
        values.pop("description")
    try:
        body = EndpointUpdate.model_validate(values)
        await webhooks.update_endpoint(
            session, request.app.state.settings, actor, endpoint_id, body
        )
    except (ValidationError, ValidationFailed) as exc:
        await session.rollback()
        context = await _hook_context(request, session, actor, endpoint_id)
        context.update(errors=_errors(exc), values=values)
        return await _page(
            request, session, actor, "webhooks", "admin/webhook.html", context, status_code=422
        )
    return redirect(request, f"/admin/webhooks/{endpoint_id}?done=saved")


@router.post("/webhooks/{endpoint_id}/test")
async def test_webhook(
    request: Request,
    session: SessionDep,
    sessions: SessionFactoryDep,
    actor: WebActor,
    endpoint_id: uuid.UUID,
) -> Response:
    """Send a signed `webhook.test` event now and show what the endpoint answered."""
    actor.require("admin:settings")
    settings = request.app.state.settings
    out = await webhooks.prepare_test(session, settings, actor, endpoint_id)
    # As the API: written and audited first; no connection is held while the endpoint answers.
    await session.commit()
    async with delivery.client_for(settings) as client:
        outcome = await delivery.send(client, out)
    async with sessions() as store, unit_of_work(store):
        tested = await webhooks.finish_test(store, settings, outcome)
    context = await _hook_context(request, session, actor, endpoint_id)
    context["tested"] = tested
    return await _page(request, session, actor, "webhooks", "admin/webhook.html", context)


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay")
async def replay_delivery(
    request: Request,
    session: SessionDep,
    actor: WebActor,
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
) -> Response:
    """Send a delivered or failed delivery again."""
    actor.require("admin:settings")
    await webhooks.replay(session, actor, delivery_id)
    return redirect(request, f"/admin/webhooks/{endpoint_id}?done=replayed")


# ---- integrations ---------------------------------------------------------------------------


def _fields(model: type[BaseModel] | None) -> list[tuple[str, bool]]:
    """The fields of a connect model: name and whether it is required."""
    if model is None:
        return []
    return [(name, info.is_required()) for name, info in model.model_fields.items()]


async def _integrations_context(
    request: Request, session: AsyncSession, actor: Actor
) -> dict[str, Any]:
    listed = await integrations.list_integrations(session, request.app.state.settings, actor)
    forms = {}
    for spec in registry.specs():
        if spec.credentials is not None and spec.config is not None and spec.check is not None:
            forms[spec.type] = {
                "credentials": _fields(spec.credentials),
                "config": _fields(spec.config),
            }
    return {"integrations": listed, "forms": forms, "connected": None, "failed_type": None}


@router.get("/integrations")
async def integrations_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """SMTP, OpenAI, Twilio and webhooks: state, configuration, connect and disconnect."""
    actor.require("admin:settings")
    context = await _integrations_context(request, session, actor)
    return await _page(request, session, actor, "integrations", "admin/integrations.html", context)


@router.post("/integrations/{type_}/connect")
async def connect_integration(
    request: Request,
    session: SessionDep,
    sessions: SessionFactoryDep,
    actor: WebActor,
    type_: str,
) -> Response:
    """Test the credentials against the service and store them (the API's connect)."""
    actor.require("admin:settings")
    if type_ not in registry.TYPES:
        raise ValidationFailed("Unknown integration", field="type")
    form = await request.form()
    credentials = {k[len("cred.") :]: v for k, v in form.items() if k.startswith("cred.") and v}
    config = {k[len("conf.") :]: v for k, v in form.items() if k.startswith("conf.") and v}
    settings = request.app.state.settings
    connected = None
    errors: dict[str, str] = {}
    try:
        prepared = integrations.prepare(type_, ConnectIn(credentials=credentials, config=config))
        await session.commit()  # as the API: no connection held while the service answers
        found = await integrations.check_connection(settings, prepared)
        async with sessions() as store, unit_of_work(store):
            connected = await integrations.save(store, settings, actor, prepared, found)
    except LeadflowError as exc:
        if not _inline(exc):
            raise
        await session.rollback()
        errors = _errors(exc)
        errors.setdefault("_form", exc.detail)
    context = await _integrations_context(request, session, actor)
    context.update(connected=connected, errors=errors, failed_type=type_ if errors else None)
    return await _page(
        request,
        session,
        actor,
        "integrations",
        "admin/integrations.html",
        context,
        status_code=422 if errors else 200,
    )


@router.post("/integrations/{type_}/disconnect")
async def disconnect_integration(
    request: Request, session: SessionDep, actor: WebActor, type_: str
) -> Response:
    """Remove the organisation's own credentials; the server-wide setting applies again."""
    actor.require("admin:settings")
    if type_ not in registry.TYPES:
        raise ValidationFailed("Unknown integration", field="type")
    await integrations.disconnect(session, actor, type_)
    return redirect(request, "/admin/integrations?done=disconnected")


# ---- audit log ------------------------------------------------------------------------------

_AUDIT_KEYS = ("action", "resource", "resource_id", "user_id", "search", "date_from", "date_to")


def _aware(raw: str, field: str) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(f"{field} must be a date", field=field) from None
    # A date picked in the form has no zone: read it in UTC, as the list shows times.
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


@router.get("/audit")
async def audit_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Audit entries with before/after values, filtered, paged by keyset (newest first)."""
    actor.require("admin:audit")
    q = request.query_params
    values = {k: str(q.get(k) or "").strip()[:200] for k in _AUDIT_KEYS}
    f = AuditFilter(
        date_from=_aware(values["date_from"], "date_from"),
        date_to=_aware(values["date_to"], "date_to"),
        user_id=_uuid(values["user_id"], "user_id"),
        action=values["action"] or None,
        resource=values["resource"] or None,
        resource_id=values["resource_id"] or None,
        search=values["search"] or None,
    )
    cursor = str(q.get("cursor") or "") or None
    rows, next_cursor = await audit.list_logs_after(session, actor, f, cursor, AUDIT_SHOWN)
    next_url = "/admin/audit?" + query_string(**values, cursor=next_cursor) if next_cursor else None
    first_url = "/admin/audit?" + query_string(**values) if cursor else None
    context = {"rows": rows, "values": values, "next_url": next_url, "first_url": first_url}
    return await _page(request, session, actor, "audit", "admin/audit.html", context)


# ---- jobs and emails ------------------------------------------------------------------------


@router.get("/jobs")
async def jobs_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Background deliveries (failed ones first by default) and the email log."""
    actor.require("admin:settings")
    status = str(request.query_params.get("status") or "failed")
    if status not in (*outbox.STATUSES, "all"):
        status = "failed"
    page = PageParams(limit=JOBS_SHOWN, offset=0)
    jobs, jobs_total = await outbox.list_jobs(
        session, actor, page, None if status == "all" else status
    )
    emails, emails_total = await outbox.list_emails(session, actor, page)
    context = {
        "jobs": jobs,
        "jobs_total": jobs_total,
        "emails": emails,
        "emails_total": emails_total,
        "status": status,
        "statuses": (*outbox.STATUSES, "all"),
    }
    return await _page(request, session, actor, "jobs", "admin/jobs.html", context)


@router.post("/jobs/{job_id}/retry")
async def retry_job(
    request: Request, session: SessionDep, actor: WebActor, job_id: uuid.UUID
) -> Response:
    """Give a failed delivery a fresh set of attempts."""
    actor.require("admin:settings")
    await outbox.retry_job(session, actor, job_id)
    return redirect(request, "/admin/jobs?done=retried")


# ---- system health --------------------------------------------------------------------------


@router.get("/health")
async def health_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """The installation's health (admins of the operator's organisation only, as the API)."""
    actor.require("admin:settings")
    settings = request.app.state.settings
    await health.require_operator(session, settings, actor)
    overview = await health.overview(session, settings=settings, queue=get_queue(), now=utcnow())
    return await _page(request, session, actor, "health", "admin/health.html", {"h": overview})
