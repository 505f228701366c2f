"""Tenant isolation, generated from the OpenAPI schema.

Every route whose path takes an id is called, with every method it has, as organisation A
with organisation B's ids: an admin of A must get 404 (never 403: a foreign row does not
exist for A), a role of A holding no permission 403 or 404. With A's own ids, a role lacking
a permission the route declares gets 403 `missing_permission`, and A's admin does not get 404
(the ids are real and of the right kind, so the 404 above can fail). A route added later is
covered as soon as it is in the schema: its path parameters must be in ID_KINDS (or, when
they are no row id, in NOT_IDS), otherwise the tests fail and say what to add.

Ids in request bodies likewise: every top-level UUID field of every JSON body (an assignee,
a team, a report, the leads of a bulk action) is sent with B's row, with a made-up id and with
A's own row. B's row must get exactly the made-up id's answer (404 or 422 problem+json; a
bulk action's per-item "not found"), and A's row must be accepted, so the refusal was about
the row. A new UUID field must name its kind (ID_KINDS, BODY_ID_KINDS) or say why it is none.

Beyond the schema: an API route kept out of it (an alias for an older client) is covered
with the body of its public twin; every page of the web app with an id is opened (GET) or
posted to (its form with the CSRF token) with B's rows behind A's login session; and ids one
level down (query filters such as `?lead_id=`, ids nested in a body's `filter` or `data`,
the row ids a web form posts) must get exactly the answer a made-up id gets.

One world (two organisations with a row of every kind) is built per engine; each test runs
in a savepoint rolled back afterwards, so a route that wrongly succeeds changes nothing for
the next one.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leadflow.app import create_app
from leadflow.auth.dependencies import current_actor
from leadflow.authz.permissions import ALL_PERMISSIONS
from leadflow.config import Settings
from leadflow.db.engine import Database, unit_of_work
from leadflow.db.session import get_session, get_session_factory
from leadflow.models.organization import Organization
from tests.fixtures.factories import Factory, Member, make_settings
from tests.web.helpers import HTMX, Browser, browser, signed_in

API = "/api/v1"

# Path (and body) parameter name → the kind of row it names. A new `{…}` parameter fails
# test_every_path_parameter_is_known until it is added here (and WORLD can build its kind).
ID_KINDS: dict[str, str] = {
    "user_id": "user",
    "role_id": "role",
    "team_id": "team",
    "key_id": "api_key",
    "log_id": "audit_log",
    "endpoint_id": "webhook_endpoint",
    "delivery_id": "webhook_delivery",
    "lead_id": "lead",
    "stage_id": "stage",
    "field_id": "custom_field",
    "task_id": "task",
    "call_id": "call_request",
    "rule_id": "assignment_rule",
    "policy_id": "sla_policy",
    "notification_id": "notification",
    "job_id": "job",
    "batch_id": "import_batch",
    "report_id": "report",
    "schedule_id": "report_schedule",
    # Body fields that name rows.
    "assignee_id": "user",
    "fixed_user_id": "user",
    "other_ids": "other_lead",  # a lead merged into `lead`
    "user_ids": "user",
    "reassign_to": "user",
    "import_batch_id": "import_batch",
}

# Path parameters that name no row of an organisation, and why. Their routes are left out of
# foreign-id test; the permission test fills them from NOT_ID_VALUES when there is one.
NOT_IDS: dict[str, str] = {
    "type": "an integration type (smtp, openai, …): always the caller's own organisation's",
    "token": "a signed download link: the token itself is the credential (no bearer)",
}
NOT_ID_VALUES: dict[str, str] = {"type": "smtp"}

# Routes with an id that no member's token opens, and what authenticates them instead.
# Unsigned, they answer 403 to everyone.
SIGNED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", f"{API}/call-requests/{{call_id}}/provider-events"): "Twilio's X-Twilio-Signature",
    ("GET", f"{API}/reports/downloads/{{token}}"): "the signed, expiring token in its path",
}

# Permissions a service checks beyond the route's declared guard (not visible to the schema).
SERVICE_PERMISSIONS: dict[tuple[str, str], set[str]] = {
    ("POST", f"{API}/leads/{{lead_id}}/merge"): {"leads:delete"},  # the others are removed
}

# Query values that keep a stream short should a foreign id ever open one.
SHORT_STREAMS: dict[str, str] = {"max_seconds": "0.2", "max_events": "1"}

# Bodies the schema alone cannot make valid: (method, path) → body ("@kind" is that kind's
# id in the caller's world).
BODY_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", f"{API}/leads/{{lead_id}}/status"): {"status": "contacted"},  # a stage key
}


# A valid call request (the voice seed's example), without its `request_id`.
CALL_REQUEST: dict[str, str] = {
    "user_id": "frontend-user",
    "title": "Book",
    "description": "A dentist appointment",
    "callback_number": "+49 30 12345678",
    "number_to_call": "+49 151 23456780",
    "preferred_time": "Monday 10-12",
}


def _settings(data_dir: Path, database_url: str) -> Settings:
    # Webhook endpoints on 127.0.0.1 (a closed port): nothing leaves the machine.
    return make_settings(database_url, data_dir, webhooks_allow_private=True)


_SCHEMA_APP = create_app(_settings(Path("/nonexistent"), "sqlite+aiosqlite:///:memory:"))
SCHEMA: dict[str, Any] = _SCHEMA_APP.openapi()


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes with their full paths (FastAPI ≥ 0.16x keeps included routers
    nested and walks them with `iter_route_contexts`; older versions list them flat)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in contexts(app.routes) if contexts else app.routes:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


ROUTES: dict[tuple[str, str], Any] = {
    (method, route.path_format): route
    for route in _api_routes(_SCHEMA_APP)
    for method in route.methods
}
PUBLIC_OPERATIONS: list[tuple[str, str]] = [
    (method.upper(), path)
    for path, ops in SCHEMA["paths"].items()
    if "{" in path
    for method in ops
    if method in {"get", "post", "put", "patch", "delete"}
]


def _twins() -> dict[tuple[str, str], tuple[str, str] | None]:
    """Each API route left out of the schema (an alias kept for an older client) → the
    schema's operation served by the same function, whose body and query it takes."""
    public = {ROUTES[op].endpoint: op for op in PUBLIC_OPERATIONS}
    return {
        (method, path): public.get(route.endpoint)
        for (method, path), route in ROUTES.items()
        if path.startswith(API) and "{" in path and not route.include_in_schema
    }


# Hidden API routes are covered like the schema's: an alias is a second door to a row.
TWINS = _twins()
OPERATIONS: list[tuple[str, str]] = PUBLIC_OPERATIONS + sorted(TWINS)


def _operation(method: str, path: str) -> dict[str, Any]:
    """The schema's operation object for (method, path), through its twin when hidden."""
    method, path = TWINS.get((method, path)) or (method, path)
    op: dict[str, Any] = SCHEMA["paths"][path][method.lower()]
    return op


_PERMISSION_GUARDS = {f"require_{p.replace(':', '_')}": p for p in ALL_PERMISSIONS}


def path_params(path: str) -> list[str]:
    """The `{name}` parameters of a path template."""
    return re.findall(r"{([^}]+)}", path)


def unknown_params(path: str) -> list[str]:
    """Path parameters neither in ID_KINDS nor in NOT_IDS."""
    return [p for p in path_params(path) if p not in ID_KINDS and p not in NOT_IDS]


def _walk(route: Any) -> Iterator[Any]:
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        yield dependant.call
        stack.extend(dependant.dependencies)


def declared_permissions(route: Any) -> set[str]:
    """The permissions the route's dependencies require (`require_permission` guards)."""
    return {
        _PERMISSION_GUARDS[name]
        for call in _walk(route)
        if (name := getattr(call, "__name__", "")) in _PERMISSION_GUARDS
    }


def authenticates_members(route: Any) -> bool:
    """Whether the route resolves the caller from a bearer token or API key."""
    return any(call is current_actor for call in _walk(route))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = SCHEMA
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def example(schema: dict[str, Any], ids: dict[str, str], name: str = "") -> Any:
    """The smallest value `schema` accepts: required properties only, ids from `ids`."""
    schema = _resolve(schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            branches = [b for b in schema[key] if _resolve(b).get("type") != "null"]
            return example(branches[0], ids, name) if branches else None
    kind = ID_KINDS.get(name)
    match schema.get("type"):
        case "object":
            props = schema.get("properties", {})
            return {k: example(props[k], ids, k) for k in schema.get("required", [])}
        case "array":
            count = max(int(schema.get("minItems", 0)), 1 if kind else 0)
            return [example(schema.get("items", {}), ids, name) for _ in range(count)]
        case "string":
            if kind is not None:
                return ids[kind]
            return _string(schema)
        case "integer" | "number":
            return max(int(schema.get("minimum", 1)), 1)
        case "boolean":
            return True
    return None


def _string(schema: dict[str, Any]) -> str:
    fmt = schema.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "email":
        return "someone@example.com"
    if fmt == "date-time":
        return (datetime.now(UTC) + timedelta(days=1)).isoformat()
    if fmt == "date":
        return (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    if fmt in {"uri", "url"}:
        return "http://127.0.0.1:9/hook"
    return "x" * max(int(schema.get("minLength", 1)), 1)


def _filled(value: Any, ids: dict[str, str]) -> Any:
    """`value` with each "@kind" (also inside a list) replaced by that kind's id in `ids`."""
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    return ids[value[1:]] if isinstance(value, str) and value[:1] == "@" else value


def request_body(method: str, path: str, ids: dict[str, str]) -> Any:
    """A minimal valid JSON body for the operation, or None when it takes none."""
    overrides = BODY_OVERRIDES.get(TWINS.get((method, path)) or (method, path))
    if overrides is not None:
        return {k: _filled(v, ids) for k, v in overrides.items()}
    content = _operation(method, path).get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return example(content["application/json"]["schema"], ids)


def query(method: str, path: str) -> dict[str, str]:
    """Query values for the operation's stream bounds, if it has any."""
    op = _operation(method, path)
    names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    return {k: v for k, v in SHORT_STREAMS.items() if k in names}


def url_for(path: str, ids: dict[str, str]) -> str:
    """The path with every id parameter filled from `ids` (others from NOT_ID_VALUES)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return ids[ID_KINDS[name]] if name in ID_KINDS else NOT_ID_VALUES[name]

    return re.sub(r"{([^}]+)}", value, path)


# ---------------------------------------------------------------------------------------
# The world: two organisations, each with a row of every kind.


@dataclass
class World:
    """Organisation A's callers, and both organisations' ids by kind."""

    client: httpx.AsyncClient
    admin: Member
    api_key: Member  # an API key of A holding every permission (no session)
    nobody: Member  # a role of A holding no permission at all
    all_but: dict[str, Member]  # permission → a role of A holding every other one
    browser: Browser  # A's admin signed in to the web app
    browser_nobody: Browser  # the role of A holding no permission, signed in
    ids_a: dict[str, str]
    ids_b: dict[str, str]


async def _created(r: httpx.Response) -> Any:
    assert r.status_code in {200, 201, 202}, (r.request.method, r.request.url.path, r.text)
    return r.json()


async def build_kinds(
    client: httpx.AsyncClient, factory: Factory, org: Organization, admin: Member
) -> dict[str, str]:
    """One row of every kind in ID_KINDS for `org`, made through the API where it has a door."""
    h = admin.headers
    ids: dict[str, str] = {}
    user = await factory.user(org, "counselor")
    ids["user"] = str(user.id)
    ids["admin"] = str(admin.user.id)
    ids["admin_email"] = admin.user.email  # a report's recipient must be a member
    ids["team"] = str((await factory.team(org)).id)
    ids["lead"] = str((await factory.lead(org, assignee_id=user.id)).id)
    ids["other_lead"] = str((await factory.lead(org)).id)
    ids["notification"] = str((await factory.notification(admin.user)).id)
    ids["job"] = str((await factory.failed_job(org)).id)
    role = await client.post(
        f"{API}/admin/roles",
        headers=h,
        json={"name": f"r{uuid.uuid4().hex[:8]}", "permissions": ["leads:read"]},
    )
    ids["role"] = (await _created(role))["id"]
    key = await client.post(f"{API}/admin/api-keys", headers=h, json={"name": "sync"})
    ids["api_key"] = (await _created(key))["id"]
    hook = await client.post(
        f"{API}/admin/integrations/webhooks",
        headers=h,
        json={"events": ["lead.created"], "endpoint_url": "http://127.0.0.1:9/hook"},
    )
    ids["webhook_endpoint"] = (await _created(hook))["id"]
    sent = await client.post(
        f"{API}/admin/integrations/webhooks/{ids['webhook_endpoint']}/test", headers=h
    )
    ids["webhook_delivery"] = (await _created(sent))["delivery"]["id"]
    stages = await client.get(f"{API}/pipeline/stages", headers=h)
    ids["stage"] = (await _created(stages))[-1]["id"]
    own_key = f"s{uuid.uuid4().hex[:8]}"  # a stage only this organisation has
    stage = await client.post(
        f"{API}/pipeline/stages", headers=h, json={"key": own_key, "name": "Own"}
    )
    ids["stage_key"] = (await _created(stage))["key"]
    me = await signed_in(factory, admin.user)
    saved = await me.post(client, "/crm/views", {"name": "Mine", "status": "new"}, headers=HTMX)
    found = re.search(r'href="/crm/views/([0-9a-f-]{36})"', saved.text)
    assert saved.status_code == 200 and found, saved.text[:300]
    ids["saved_view"] = found.group(1)
    field = await client.post(
        f"{API}/custom-fields", headers=h, json={"key": "size", "label": "Size", "type": "text"}
    )
    ids["custom_field"] = (await _created(field))["id"]
    task = await client.post(
        f"{API}/tasks", headers=h, json={"title": "Call back", "lead_id": ids["lead"]}
    )
    ids["task"] = (await _created(task))["id"]
    call = await client.post(
        f"{API}/call-requests",
        headers=h,
        json={**CALL_REQUEST, "request_id": f"req-{uuid.uuid4().hex[:8]}"},
    )
    ids["call_request"] = (await _created(call))["id"]
    rule = await client.post(
        f"{API}/assignment/rules",
        headers=h,
        json={"name": "All", "strategy": "round_robin", "user_ids": [ids["user"]]},
    )
    ids["assignment_rule"] = (await _created(rule))["id"]
    policy = await client.post(
        f"{API}/sla/policies", headers=h, json={"name": "First touch", "duration_minutes": 60}
    )
    ids["sla_policy"] = (await _created(policy))["id"]
    imported = await client.post(
        f"{API}/leads/import",
        headers={**h, "Content-Type": "text/csv"},
        content=b"first_name,email\nImported,imported@example.com\n",
    )
    ids["import_batch"] = (await _created(imported))["import_batch_id"]
    report = await client.post(
        f"{API}/reports/build", headers=h, json={"name": "Everything", "fields": ["source"]}
    )
    ids["report"] = (await _created(report))["report_id"]
    schedule = await client.post(
        f"{API}/reports/schedule",
        headers=h,
        json={
            "report_id": ids["report"],
            "frequency": "daily",
            "time": "08:00",
            "recipients": [admin.user.email],
        },
    )
    ids["report_schedule"] = (await _created(schedule))["id"]
    logs = await client.get(f"{API}/admin/audit-logs", headers=h)
    ids["audit_log"] = (await _created(logs))["items"][0]["id"]
    missing = (set(ID_KINDS.values()) | set(PAGE_ID_KINDS.values())) - set(ids)
    assert not missing, f"build_kinds makes no row of kind(s) {sorted(missing)}"
    return ids


@pytest.fixture(scope="module")
async def world_conn(database: Database) -> AsyncIterator[AsyncConnection]:
    """One connection per engine for the whole module, inside a transaction rolled back."""
    async with database.engine.connect() as connection:
        trans = await connection.begin()
        try:
            yield connection
        finally:
            await trans.rollback()


def _session(conn: AsyncConnection) -> AsyncSession:
    return AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture(scope="module")
async def world(
    world_conn: AsyncConnection, database: Database, tmp_root: Path
) -> AsyncIterator[World]:
    """Organisations A and B with a row of every kind, and A's callers."""
    settings = _settings(tmp_root / "data", database.url)
    app: FastAPI = create_app(settings, database=database)

    async def test_session() -> AsyncIterator[AsyncSession]:
        async with _session(world_conn) as s, unit_of_work(s):
            yield s

    app.dependency_overrides[get_session] = test_session
    app.dependency_overrides[get_session_factory] = lambda: lambda: _session(world_conn)
    session = _session(world_conn)
    factory = Factory(session, settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        org_a, org_b = await factory.org(), await factory.org()
        admin_a, admin_b = await factory.member(org_a), await factory.member(org_b)
        ids_a = await build_kinds(client, factory, org_a, admin_a)
        ids_b = await build_kinds(client, factory, org_b, admin_b)
        key = await client.post(
            f"{API}/admin/api-keys",
            headers=admin_a.headers,
            json={"name": "everything", "scopes": list(ALL_PERMISSIONS)},
        )
        api_key = Member(admin_a.user, {"X-API-Key": (await _created(key))["api_key"]}, "")
        nobody_role = (await factory.role(org_a, [])).name
        nobody = await factory.member(org_a, nobody_role)
        all_but: dict[str, Member] = {}
        for permission in ALL_PERMISSIONS:
            others = [p for p in ALL_PERMISSIONS if p != permission]
            all_but[permission] = await factory.member(
                org_a, (await factory.role(org_a, others)).name
            )
        pages = await signed_in(factory, admin_a.user)
        pages_nobody = await browser(factory, org_a, nobody_role)
        yield World(client, admin_a, api_key, nobody, all_but, pages, pages_nobody, ids_a, ids_b)
    await session.close()


@pytest.fixture
async def rolled_back(world_conn: AsyncConnection) -> AsyncIterator[None]:
    """The test's requests run in a savepoint that is rolled back."""
    savepoint = await world_conn.begin_nested()
    try:
        yield
    finally:
        await savepoint.rollback()


async def call(world: World, member: Member, method: str, path: str, ids: dict[str, str]) -> Any:
    """The operation called by `member` with `ids` in its path and body."""
    return await world.client.request(
        method,
        url_for(path, ids),
        headers=member.headers,
        params=query(method, path),
        json=request_body(method, path, ids),
    )


def _problem(r: httpx.Response) -> bool:
    return r.headers.get("content-type", "").startswith("application/problem+json")


def _explain(label: str, r: httpx.Response) -> str:
    return f"{label}: {r.status_code} {r.text[:300]}"


def _id_route(method: str, path: str, *, foreign: bool) -> Any:
    bad = unknown_params(path)
    if bad:
        pytest.fail(
            f"{method} {path}: path parameter(s) {bad} unknown to the isolation test; add each "
            "to ID_KINDS (with a row of that kind in build_kinds) or, if it names no row of "
            "an organisation, to NOT_IDS with the reason"
        )
    return ROUTES[(method, path)]


def _applies(method: str, path: str, *, foreign: bool) -> bool:
    """Whether the check applies: a route whose parameter names no row (NOT_IDS) has no
    foreign id to try, and one with no member door (SIGNED_ROUTES) no permission to lack."""
    not_ids = [p for p in path_params(path) if p in NOT_IDS]
    if not_ids and (foreign or any(p not in NOT_ID_VALUES for p in not_ids)):
        return False
    return foreign or (method, path) not in SIGNED_ROUTES


FOREIGN_CASES = [(m, p) for m, p in OPERATIONS if _applies(m, p, foreign=True)]
PERMISSION_CASES = [(m, p) for m, p in OPERATIONS if _applies(m, p, foreign=False)]


# ---------------------------------------------------------------------------------------


def test_every_path_parameter_is_known() -> None:
    """Every `{…}` of the schema is an id kind or explained; every id route has a member
    door or is listed with what authenticates it."""
    assert len(PUBLIC_OPERATIONS) > 40  # the schema was read (45 paths with ids when written)
    twinless = [op for op, twin in TWINS.items() if twin is None]
    assert not twinless, f"hidden API routes with no public twin to take a body from: {twinless}"
    # Few routes are left out of a check, each for a reason written in NOT_IDS/SIGNED_ROUTES.
    assert len(OPERATIONS) - len(FOREIGN_CASES) <= 10
    assert len(OPERATIONS) - len(PERMISSION_CASES) <= 10
    unknown = {p for _, path in OPERATIONS for p in unknown_params(path)}
    assert not unknown, f"add {sorted(unknown)} to ID_KINDS (and build_kinds) or NOT_IDS"
    doorless = [
        (m, p)
        for m, p in OPERATIONS
        if not authenticates_members(ROUTES[(m, p)]) and (m, p) not in SIGNED_ROUTES
    ]
    assert not doorless, (
        f"id routes with no member authentication, not in SIGNED_ROUTES: {doorless}"
    )


@pytest.mark.parametrize(
    ("method", "path"), FOREIGN_CASES, ids=[f"{m} {p}" for m, p in FOREIGN_CASES]
)
async def test_another_organisations_ids_are_404(
    world: World, rolled_back: None, method: str, path: str
) -> None:
    """A's admin and API key get 404 problem+json for B's rows; a role of A without
    permissions 403 or 404."""
    _id_route(method, path, foreign=True)
    if (method, path) in SIGNED_ROUTES:
        r = await call(world, world.admin, method, path, world.ids_b)
        assert r.status_code == 403 and _problem(r), _explain("unsigned call", r)
        return
    r = await call(world, world.admin, method, path, world.ids_b)
    assert r.status_code == 404, _explain("A's admin with B's ids", r)
    assert _problem(r), _explain("not problem+json", r)
    r = await call(world, world.api_key, method, path, world.ids_b)
    # An API key may meet 403 `person_required` (a route for people): about the credential,
    # not the row.
    refused = r.status_code == 403 and r.json().get("code") == "person_required"
    assert r.status_code == 404 or refused, _explain("A's API key with B's ids", r)
    r = await call(world, world.nobody, method, path, world.ids_b)
    assert r.status_code in {403, 404} and _problem(r), _explain("A's role without permissions", r)
    # The control: with A's own ids the route finds the rows (the ids are of the right kind).
    r = await call(world, world.admin, method, path, world.ids_a)
    assert r.status_code != 404 and r.status_code < 500, _explain("A's admin with A's ids", r)


@pytest.mark.parametrize(
    ("method", "path"), PERMISSION_CASES, ids=[f"{m} {p}" for m, p in PERMISSION_CASES]
)
async def test_a_missing_permission_is_403(
    world: World, rolled_back: None, method: str, path: str
) -> None:
    """With A's own rows: lacking a declared permission is 403 naming it; lacking all, 403/404."""
    route = _id_route(method, path, foreign=False)
    wanted = declared_permissions(route) | SERVICE_PERMISSIONS.get((method, path), set())
    for permission in sorted(wanted):
        r = await call(world, world.all_but[permission], method, path, world.ids_a)
        assert r.status_code == 403 and _problem(r), _explain(f"without {permission}", r)
        assert r.json().get("permission") == permission, _explain(f"without {permission}", r)
    r = await call(world, world.nobody, method, path, world.ids_a)
    assert r.status_code in {403, 404} and _problem(r), _explain("without any permission", r)


# ---------------------------------------------------------------------------------------
# Ids in request bodies: a field that names a row (an assignee, a team, the leads of a bulk
# action, a report to schedule) must not reach another organisation's row either.

# Body fields named like a row that hold something else, and why.
NOT_BODY_IDS: dict[str, str] = {
    "user_id": "call requests: the caller's own user id in the voice front end (free text)",
}
# Body fields whose kind depends on the route.
BODY_ID_KINDS: dict[tuple[str, str, str], str] = {
    ("POST", f"{API}/leads/bulk", "ids"): "lead",
    ("POST", f"{API}/pipeline/stages/reorder", "ids"): "stage",
    ("POST", f"{API}/users", "team_id"): "team",
    # Another member than the one deactivated (the leads' new owner).
    ("POST", f"{API}/admin/users/bulk-action", "reassign_to"): "admin",
    ("PATCH", f"{API}/admin/users/{{user_id}}", "reassign_to"): "admin",
}
# Bodies the schema's required fields alone do not make valid, per (method, path), or per
# (method, path, field) for one field: the field under test is set on top ("@kind" is that
# kind's id in the caller's world, also inside a list).
BODY_ID_BASES: dict[tuple[str, ...], dict[str, Any]] = {
    ("POST", f"{API}/leads"): {"name": "Body Id", "email": "body-id@example.com"},
    ("POST", f"{API}/leads/bulk"): {"action": "tag_add", "value": "vip"},
    ("POST", f"{API}/users"): {
        "email": "new-member@example.com",
        "full_name": "New Member",
        "role": "counselor",
    },
    ("POST", f"{API}/admin/users"): {
        "email": "new-admin-member@example.com",
        "full_name": "New Member",
        "role": "counselor",
    },
    ("POST", f"{API}/admin/users/bulk-action"): {"action": "deactivate", "user_ids": ["@user"]},
    ("PATCH", f"{API}/admin/users/{{user_id}}"): {"status": "inactive"},
    ("POST", f"{API}/call-requests"): {**CALL_REQUEST, "request_id": "req-body-id"},
    ("POST", f"{API}/assignment/rules"): {
        "name": "Round",
        "strategy": "round_robin",
        "user_ids": ["@user"],
    },
    ("POST", f"{API}/assignment/rules", "fixed_user_id"): {
        "name": "Fixed",
        "strategy": "fixed_user",
    },
    ("POST", f"{API}/reports/schedule"): {
        "frequency": "daily",
        "time": "08:00",
        "recipients": ["@admin_email"],
    },
}
# Bulk operations answer per item: an id out of the caller's reach is reported there as not
# found (not matched), with a 200 for the request, exactly as a made-up id is.
PER_ITEM: set[tuple[str, str, str]] = {
    ("POST", f"{API}/leads/bulk", "ids"),
    ("POST", f"{API}/admin/users/bulk-action", "user_ids"),
}
# Body fields that filter (an export's rows): another organisation's row matches nothing,
# exactly as a made-up id does.
AS_FILTER: set[tuple[str, str, str]] = {
    ("POST", f"{API}/leads/export", "import_batch_id"),
}
# Fields whose accepted value cannot be built from one id, so the control (A's own row
# accepted) is not made; the refusal is still checked against a made-up id.
NO_CONTROL: dict[tuple[str, str, str], str] = {
    ("POST", f"{API}/pipeline/stages/reorder", "ids"): "a permutation of all the caller's stages",
}


def _uuid_field(schema: dict[str, Any]) -> str | None:
    """'one' or 'many' when the property holds a UUID or a list of them, else None."""
    schema = _resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            found = [f for b in schema[key] if (f := _uuid_field(b))]
            return found[0] if found else None
    if schema.get("type") == "array":
        return "many" if _uuid_field(schema.get("items", {})) else None
    return "one" if schema.get("format") == "uuid" else None


def _body_properties(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON body's top-level properties (of its object branch when the body is optional)."""
    schema = _resolve(schema)
    for branch in schema.get("anyOf", []):
        if _resolve(branch).get("type") == "object":
            return _body_properties(branch)
    props: dict[str, Any] = schema.get("properties", {})
    return props


def _body_id_cases() -> list[tuple[str, str, str, str]]:
    """(method, path, field, kind) for every top-level UUID field of a JSON body."""
    cases = []
    for path, ops in SCHEMA["paths"].items():
        if any(p in NOT_IDS for p in path_params(path)):
            continue
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            for name, prop in _body_properties(content["schema"]).items():
                if name in NOT_BODY_IDS or _uuid_field(prop) is None:
                    continue
                key = (method.upper(), path, name)
                kind = BODY_ID_KINDS.get(key) or ID_KINDS.get(name)
                cases.append((*key, kind or f"unknown:{name}"))
    # A hidden alias takes its twin's body, so its fields are tried at its own door too.
    for (method, path), twin in sorted(TWINS.items()):
        cases.extend((method, path, n, k) for m, p, n, k in list(cases) if (m, p) == twin)
    return cases


BODY_ID_CASES = _body_id_cases()
KNOWN_BODY_ID_CASES = [c for c in BODY_ID_CASES if not c[3].startswith("unknown:")]


def body_with(method: str, path: str, name: str, value: str, ids: dict[str, str]) -> Any:
    """The operation's minimal body with `name` set to `value` (a list when it takes many)."""
    op = _operation(method, path)
    schema = _resolve(op["requestBody"]["content"]["application/json"]["schema"])
    props = _body_properties(schema)
    method, path = TWINS.get((method, path)) or (method, path)
    found = BODY_ID_BASES.get((method, path, name)) or BODY_ID_BASES.get((method, path))
    base = {k: _filled(v, ids) for k, v in (found or example(schema, ids) or {}).items()}
    many = _uuid_field(props[name]) == "many"
    base[name] = [value] if many else value
    return base


def test_every_body_id_is_known() -> None:
    """The schema was read, and every UUID field of a body names a known kind of row."""
    assert len(BODY_ID_CASES) >= 20  # 24 fields in 18 operations when written
    unknown = [c for c in BODY_ID_CASES if c[3].startswith("unknown:")]
    assert not unknown, (
        f"body fields {unknown}: add each to ID_KINDS / BODY_ID_KINDS, or to NOT_BODY_IDS "
        "with the reason"
    )


@pytest.mark.parametrize(
    ("method", "path", "name", "kind"),
    KNOWN_BODY_ID_CASES,
    ids=[f"{m} {p} {n}" for m, p, n, _ in KNOWN_BODY_ID_CASES],
)
async def test_another_organisations_id_in_a_body_is_refused_as_unknown(
    world: World, rolled_back: None, method: str, path: str, name: str, kind: str
) -> None:
    """A's admin naming B's row in a body gets exactly what a made-up id gets (404 or 422
    problem+json: B's row is not there for A), and the same body with A's row is accepted."""

    async def send(value: str) -> httpx.Response:
        return await world.client.request(
            method,
            url_for(path, world.ids_a),
            headers=world.admin.headers,
            params=query(method, path),
            json=body_with(method, path, name, value, world.ids_a),
        )

    foreign_id, made_up_id = world.ids_b[kind], str(uuid.uuid4())
    foreign, made_up = await send(foreign_id), await send(made_up_id)
    both = f"{_explain('B id', foreign)} / {_explain('made-up id', made_up)}"
    if (method, path, name) in PER_ITEM | AS_FILTER:
        assert foreign.status_code == 200, both
        # The same answer, the id apart: nothing matched, nothing told.
        assert foreign.text.replace(foreign_id, "<id>") == made_up.text.replace(
            made_up_id, "<id>"
        ), both
    else:
        assert foreign.status_code in {404, 422} and _problem(foreign), both
        assert (foreign.status_code, foreign.json().get("code")) == (
            made_up.status_code,
            made_up.json().get("code"),
        ), both
    # The control: the same body naming A's own row is accepted, so the refusal above was
    # about the row, not the rest of the body.
    if (method, path, name) in NO_CONTROL:
        return
    own = await send(world.ids_a[kind])
    assert own.status_code < 400 or own.status_code == 409, _explain("A's own id", own)


# ---------------------------------------------------------------------------------------
# The web app's pages: the same rows behind a login session's cookie and a CSRF-checked
# form. Every page route with an id is found on the app itself (pages are not in the schema).

PAGE_ID_KINDS: dict[str, str] = {
    "view_id": "saved_view",  # a member's own saved list view
    "stage": "stage_key",  # a pipeline column, named by its stage's key
}
PAGE_NOT_IDS: dict[str, str] = {"type_": NOT_IDS["type"]}


def _page_operations() -> list[tuple[str, str]]:
    ops: list[tuple[str, str]] = []
    for route in _api_routes(_SCHEMA_APP):
        path = route.path_format
        if path.startswith(API) or "{" not in path or route.include_in_schema:
            continue
        ops.extend((m, path) for m in sorted(route.methods) if m in {"GET", "POST"})
    return ops


PAGE_OPERATIONS = _page_operations()
PAGE_CASES = [
    (m, p) for m, p in PAGE_OPERATIONS if not any(x in PAGE_NOT_IDS for x in path_params(p))
]


def page_url(path: str, ids: dict[str, str]) -> str:
    """The page's path with every id parameter filled from `ids`."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return ids[PAGE_ID_KINDS.get(name) or ID_KINDS[name]]

    return re.sub(r"{([^}]+)}", value, path)


async def open_page(
    world: World, who: Browser, method: str, path: str, ids: dict[str, str]
) -> httpx.Response:
    """GET the page, or POST its form (the CSRF token only) as `who`."""
    url = page_url(path, ids)
    if method == "GET":
        return await who.get(world.client, url)
    return await who.post(world.client, url, {})


def test_every_page_parameter_is_known() -> None:
    """The app's page routes were found, and each `{…}` is an id kind or explained."""
    assert len(PAGE_OPERATIONS) > 30  # 40 page routes with ids when written
    known = set(ID_KINDS) | set(PAGE_ID_KINDS) | set(PAGE_NOT_IDS)
    unknown = {x for _, p in PAGE_OPERATIONS for x in path_params(p) if x not in known}
    assert not unknown, f"add {sorted(unknown)} to PAGE_ID_KINDS (and build_kinds) or PAGE_NOT_IDS"


@pytest.mark.parametrize(("method", "path"), PAGE_CASES, ids=[f"{m} {p}" for m, p in PAGE_CASES])
async def test_another_organisations_ids_are_404_on_pages(
    world: World, rolled_back: None, method: str, path: str
) -> None:
    """A's admin gets 404 for a page of B's rows, and a role of A without permissions 403 or
    404; with A's own rows the admin's page is found."""
    r = await open_page(world, world.browser, method, path, world.ids_b)
    assert r.status_code == 404, _explain("A's admin with B's ids", r)
    r = await open_page(world, world.browser_nobody, method, path, world.ids_b)
    assert r.status_code in {403, 404}, _explain("A's role without permissions, B's ids", r)
    r = await open_page(world, world.browser_nobody, method, path, world.ids_a)
    assert r.status_code in {403, 404}, _explain("A's role without permissions, A's ids", r)
    # The control: the same page with A's own rows is there (the ids are of the right kind).
    r = await open_page(world, world.browser, method, path, world.ids_a)
    assert r.status_code != 404 and r.status_code < 500, _explain("A's admin with A's ids", r)


# ---------------------------------------------------------------------------------------
# Ids one level down: filters in a query string (`?lead_id=`, `?team_id=`) and ids nested in
# a body (a bulk action's filter, an AI request's `data`). Another organisation's row must
# behave exactly as a made-up id does: the same status and the same answer, the id apart
# (an empty page, 404, 422), so a filter can neither reach nor reveal it.

# Filters that hold an id as a plain string (they also take words: "me", "none").
STRING_FILTER_IDS: dict[tuple[str, str, str], str] = {
    ("GET", f"{API}/leads", "query.assigned_to"): "user",
    ("POST", f"{API}/leads/export", "body.assigned_to"): "user",
    ("POST", f"{API}/leads/bulk", "body.filter.assigned_to"): "user",
}
# Where a filter's kind is not its name's.
FILTER_ID_KINDS: dict[tuple[str, str, str], str] = {
    ("GET", f"{API}/admin/audit-logs", "query.user_id"): "admin",
    ("DELETE", f"{API}/admin/users/{{user_id}}", "query.reassign_to"): "admin",
    ("GET", f"{API}/notifications/stream", "query.after"): "notification",
}


def _nested_uuid_fields(schema: dict[str, Any], trail: str, depth: int = 0) -> Iterator[str]:
    schema = _resolve(schema)
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, []):
            yield from _nested_uuid_fields(branch, trail, depth)
    for name, prop in schema.get("properties", {}).items():
        if depth > 0 and _uuid_field(prop) == "one":
            yield f"{trail}.{name}"
        if depth < 3:
            yield from _nested_uuid_fields(prop, f"{trail}.{name}", depth + 1)


def _filter_id_cases() -> list[tuple[str, str, str, str]]:
    """(method, path, where, kind): every UUID query parameter, every UUID nested in a JSON
    body, and the string ids above; `where` is "query.<name>" or "body.<dotted path>"."""
    found: dict[tuple[str, str, str], None] = dict.fromkeys(STRING_FILTER_IDS)
    for path, ops in SCHEMA["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                if p["in"] == "query" and _uuid_field(p.get("schema", {})):
                    found[(method.upper(), path, f"query.{p['name']}")] = None
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content is not None:
                for where in _nested_uuid_fields(content["schema"], "body"):
                    found[(method.upper(), path, where)] = None
    cases = []
    for key in found:
        name = key[2].rsplit(".", 1)[1]
        kind = STRING_FILTER_IDS.get(key) or FILTER_ID_KINDS.get(key) or ID_KINDS.get(name)
        cases.append((*key, kind or f"unknown:{name}"))
    return cases


FILTER_ID_CASES = _filter_id_cases()
KNOWN_FILTER_ID_CASES = [c for c in FILTER_ID_CASES if not c[3].startswith("unknown:")]


def test_every_filter_id_is_known() -> None:
    """Query and nested body ids were found, and each names a known kind of row."""
    assert len(FILTER_ID_CASES) >= 12  # 14 when written
    unknown = [c for c in FILTER_ID_CASES if c[3].startswith("unknown:")]
    assert not unknown, f"filter ids {unknown}: add each to ID_KINDS or FILTER_ID_KINDS"


def _set(body: dict[str, Any], dotted: str, value: str) -> dict[str, Any]:
    node = body
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return body


def _answer(r: httpx.Response, value: str) -> Any:
    """The response's JSON with `value` and the per-request id masked (its text if not JSON)."""
    text = r.text.replace(value, "<id>")
    if not r.headers.get("content-type", "").endswith("json"):
        return text
    body = json.loads(text)
    if isinstance(body, dict):
        body.pop("request_id", None)
    return body


async def _with_filter_id(
    world: World, method: str, path: str, where: str, value: str
) -> httpx.Response:
    params = query(method, path)
    body = request_body(method, path, world.ids_a)
    place, dotted = where.split(".", 1)
    if place == "query":
        params[dotted] = value
    else:
        base = BODY_ID_BASES.get((method, path))
        body = {k: _filled(v, world.ids_a) for k, v in base.items()} if base else body or {}
        body = _set(body, dotted, value)
    return await world.client.request(
        method,
        url_for(path, world.ids_a),
        headers=world.admin.headers,
        params=params,
        json=body,
    )


@pytest.mark.parametrize(
    ("method", "path", "where", "kind"),
    KNOWN_FILTER_ID_CASES,
    ids=[f"{m} {p} {w}" for m, p, w, _ in KNOWN_FILTER_ID_CASES],
)
async def test_another_organisations_id_in_a_filter_is_a_made_up_one(
    world: World, rolled_back: None, method: str, path: str, where: str, kind: str
) -> None:
    """B's row in a filter gets exactly the made-up id's answer; A's own row is accepted."""
    foreign_id, made_up_id = world.ids_b[kind], str(uuid.uuid4())
    foreign = await _with_filter_id(world, method, path, where, foreign_id)
    made_up = await _with_filter_id(world, method, path, where, made_up_id)
    both = f"{_explain('B id', foreign)} / {_explain('made-up id', made_up)}"
    assert foreign.status_code < 500 and foreign.status_code == made_up.status_code, both
    assert _answer(foreign, foreign_id) == _answer(made_up, made_up_id), both
    own = await _with_filter_id(world, method, path, where, world.ids_a[kind])
    assert own.status_code < 400 or own.status_code == 409, _explain("A's own id", own)


# Ids in the web app's forms (a field naming a row, not the page's path): the page must answer
# another organisation's row exactly as it answers a made-up id, and accept A's own.
FORM_IDS: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("/crm/leads/{lead_id}/assign", "assignee_id"): ("user", {}),
    ("/crm/leads/{lead_id}/merge", "other_ids"): ("other_lead", {}),
    ("/crm/leads/bulk", "ids"): ("lead", {"action": "tag_add", "value": "vip"}),
    # Another member than the one deactivated (the leads' new owner).
    ("/admin/users/{user_id}/deactivate", "reassign_to"): ("admin", {}),
}
_FORM_FIELD = re.compile(r'form_(?:text|list)\(form, "([a-z_]+)"\)')


def test_every_form_id_is_known() -> None:
    """Every form field of the web routes named like a row id is in FORM_IDS."""
    routes = Path(__file__).resolve().parents[2] / "src" / "leadflow" / "web" / "routes"
    names = {
        name
        for source in routes.glob("*.py")
        for name in _FORM_FIELD.findall(source.read_text())
        if name.endswith(("_id", "ids", "_to"))
    }
    assert names, "no form fields found: has form_text/form_list been renamed?"
    assert names == {field for _, field in FORM_IDS}, f"form id fields: {sorted(names)}"


@pytest.mark.parametrize(("path", "field"), sorted(FORM_IDS), ids=[p for p, _ in sorted(FORM_IDS)])
async def test_another_organisations_id_in_a_form_is_a_made_up_one(
    world: World, rolled_back: None, path: str, field: str
) -> None:
    """B's row in a form gets exactly the made-up id's answer; A's own row is accepted."""
    kind, base = FORM_IDS[(path, field)]
    url = page_url(path, world.ids_a)

    async def post(value: str) -> httpx.Response:
        return await world.browser.post(world.client, url, {**base, field: value}, headers=HTMX)

    foreign_id, made_up_id = world.ids_b[kind], str(uuid.uuid4())
    foreign, made_up = await post(foreign_id), await post(made_up_id)
    both = f"{_explain('B id', foreign)} / {_explain('made-up id', made_up)}"
    assert foreign.status_code < 500 and foreign.status_code == made_up.status_code, both
    assert foreign.text.replace(foreign_id, "<id>") == made_up.text.replace(made_up_id, "<id>")
    own = await post(world.ids_a[kind])
    assert own.status_code < 400, _explain("A's own id", own)
