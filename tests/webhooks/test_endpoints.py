"""The webhook endpoints: the happy paths, another organisation's ids (404), roles without the
permission (403), bad input (422, nothing written), and targets on private addresses."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.audit_log import AuditLog
from leadflow.models.organization import Organization
from leadflow.models.role import Role
from leadflow.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.conftest import new_uuid
from tests.fixtures.factories import Factory, Member
from tests.webhooks.conftest import ALL_LEAD_EVENTS, API, subscribe
from tests.webhooks.receiver import Receiver


async def _role(
    factory: Factory, org: Organization, name: str, permissions: list[str], scope: str
) -> Member:
    factory.session.add(
        Role(organization_id=org.id, name=name, permissions=permissions, row_scope=scope)
    )
    await factory.session.commit()
    return await factory.member(org, name)


async def _count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0)


async def test_crud_and_the_secret_is_shown_once(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, receiver: Receiver
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    created = await subscribe(
        client,
        admin.headers,
        receiver,
        events=["lead.created", "task.completed"],
        description="CRM sync",
    )
    assert set(created) == {
        "id", "endpoint_url", "description", "events", "status", "disabled_reason", "disabled_at",
        "failing_since", "consecutive_failures", "last_success_at", "created_at", "updated_at",
        "secret",
    }  # fmt: skip
    assert created["events"] == ["lead.created", "task.completed"]
    assert created["endpoint_url"] == receiver.url and created["description"] == "CRM sync"
    # Encrypted at rest: the stored column does not contain the secret.
    row = await session.get(WebhookEndpoint, uuid.UUID(created["id"]))
    assert row is not None and created["secret"] not in row.secret
    assert created["secret"][6:] not in row.secret
    url = f"{API}/{created['id']}"
    got = (await client.get(url, headers=admin.headers)).json()
    assert "secret" not in got and got["id"] == created["id"]
    listed = (await client.get(API, headers=admin.headers)).json()
    assert listed["total"] == 1 and listed["limit"] == 50 and listed["offset"] == 0
    assert [e["id"] for e in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]
    # The design's path is an alias.
    assert (await client.get("/api/v1/admin/webhooks", headers=admin.headers)).json() == listed

    r = await client.patch(
        url,
        headers=admin.headers,
        json={"events": ["lead.deleted"], "description": None, "status": "disabled"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["events"] == ["lead.deleted"] and r.json()["description"] is None
    assert r.json()["status"] == "disabled"
    assert r.json()["disabled_reason"] == f"disabled by {admin.user.email}"
    r = await client.patch(url, headers=admin.headers, json={"status": "active"})
    assert r.json()["status"] == "active" and r.json()["disabled_reason"] is None

    audits = list(
        await session.scalars(
            select(AuditLog.action)
            .where(AuditLog.resource_id == created["id"])
            .order_by(AuditLog.created_at, AuditLog.id)
        )
    )
    assert audits == ["webhook.create", "webhook.update", "webhook.update"]
    logged = await session.scalar(
        select(AuditLog).where(
            AuditLog.action == "webhook.create", AuditLog.resource_id == created["id"]
        )
    )
    assert logged is not None and created["secret"] not in str(logged.after)

    integrations = (await client.get("/api/v1/admin/integrations", headers=admin.headers)).json()
    webhook = next(i for i in integrations if i["type"] == "webhook")
    assert webhook["status"] == "connected"
    assert webhook["config"] == {"active_endpoints": 1, "disabled_endpoints": 0}

    assert (await client.post(f"{url}/test", headers=admin.headers)).json()["success"] is True
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    assert await _count(session) == 0
    # Its deliveries and their attempts went with it.
    for model in (WebhookDelivery, WebhookAttempt):
        assert await session.scalar(select(func.count()).select_from(model)) == 0


async def test_a_chosen_secret_is_kept(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    created = await subscribe(client, admin.headers, receiver, secret=secret)
    assert created["secret"] == secret


async def test_other_organisations_ids_are_404(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver
) -> None:
    org, other = await factory.org(), await factory.org()
    admin, stranger = await factory.member(org), await factory.member(other)
    endpoint = await subscribe(client, admin.headers, receiver)
    r = await client.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    delivery_id = r.json()["delivery"]["id"]
    base = f"{API}/{endpoint['id']}"
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"description": "mine now"}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/test", None),
        ("POST", f"{API}/deliveries/{delivery_id}/replay", None),
        ("GET", f"{API}/{new_uuid()}", None),
        ("POST", f"{API}/deliveries/{new_uuid()}/replay", None),
    ]:
        r = await client.request(method, path, headers=stranger.headers, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["code"] == "not_found"
    assert (await client.get(API, headers=stranger.headers)).json()["total"] == 0
    assert len(receiver.received) == 1  # only the owner's test


@pytest.mark.parametrize("role", ["manager", "counselor", "viewer"])
async def test_roles_without_the_permission_get_403(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver, role: str
) -> None:
    org = await factory.org()
    admin, member = await factory.member(org), await factory.member(org, role)
    endpoint = await subscribe(client, admin.headers, receiver)
    base = f"{API}/{endpoint['id']}"
    for method, path, body in [
        ("POST", API, {"events": ["lead.created"], "endpoint_url": receiver.url}),
        ("GET", API, None),
        ("GET", base, None),
        ("PATCH", base, {"description": "x"}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/test", None),
        ("POST", f"{API}/deliveries/{new_uuid()}/replay", None),
    ]:
        r = await client.request(method, path, headers=member.headers, json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["code"] == "missing_permission"
    assert receiver.received == []


async def test_subscribing_needs_to_see_what_the_events_carry(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, receiver: Receiver
) -> None:
    """An endpoint receives every such event of the organisation: nobody subscribes to what
    they could not read themselves."""
    org = await factory.org()
    team_admin = await _role(
        factory, org, "team-admin", ["admin:settings", "leads:read", "tasks:read"], "team"
    )
    body = {"events": ["lead.created"], "endpoint_url": receiver.url}
    r = await client.post(API, headers=team_admin.headers, json=body)
    assert r.status_code == 403 and r.json()["code"] == "webhook_scope_too_narrow"
    lead_reader = await _role(factory, org, "lead-admin", ["admin:settings", "leads:read"], "org")
    r = await client.post(
        API, headers=lead_reader.headers, json={**body, "events": ["task.completed"]}
    )
    assert r.status_code == 403 and r.json()["code"] == "missing_permission"
    assert "tasks:read" in r.json()["detail"]
    r = await client.post(API, headers=lead_reader.headers, json=body)
    assert r.status_code == 201
    # Widening an endpoint is checked the same way.
    r = await client.patch(
        f"{API}/{r.json()['id']}",
        headers=lead_reader.headers,
        json={"events": ["lead.created", "call_request.updated"]},
    )
    assert r.status_code == 403 and r.json()["code"] == "missing_permission"
    assert await _count(session) == 1


BAD_BODIES: list[dict[str, Any]] = [
    {},
    {"events": [], "endpoint_url": "https://example.com/h"},
    {"events": ["lead.exploded"], "endpoint_url": "https://example.com/h"},
    {"events": ["webhook.test"], "endpoint_url": "https://example.com/h"},
    {"events": ["lead.created", "lead.created"], "endpoint_url": "https://example.com/h"},
    {"events": ["lead.created"], "endpoint_url": "ftp://example.com/h"},
    {"events": ["lead.created"], "endpoint_url": "https://user:pw@example.com/h"},
    {"events": ["lead.created"], "endpoint_url": "https://example.com/h#frag"},
    {"events": ["lead.created"], "endpoint_url": "https://example.com:99999/h"},
    {"events": ["lead.created"], "endpoint_url": "not a url at all"},
    {"events": ["lead.created"], "endpoint_url": "https://example.com/" + "a" * 2000},
    {"events": ["lead.created"], "endpoint_url": None},
    {"events": None, "endpoint_url": "https://example.com/h"},
    {"events": ["lead.created"], "endpoint_url": "https://example.com/h", "secret": "whsec_x"},
    {"events": ["lead.created"], "endpoint_url": "https://example.com/h", "secret": "abc"},
    {"events": ["lead.created"], "endpoint_url": "https://example.com/h", "colour": "red"},
    {"events": ["lead.created"] * 11, "endpoint_url": "https://example.com/h"},
]


async def test_bad_input_is_422_and_writes_nothing(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, receiver: Receiver
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    for body in BAD_BODIES:
        r = await client.post(API, headers=admin.headers, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == "validation_error"
    assert await _count(session) == 0
    endpoint = await subscribe(client, admin.headers, receiver)
    base = f"{API}/{endpoint['id']}"
    patches: list[dict[str, Any]] = [
        {"events": None},
        {"events": []},
        {"endpoint_url": None},
        {"status": "paused"},
        {"status": None},
        {"secret": "whsec_AAAA"},
        {"endpoint_url": "gopher://x"},
    ]
    for body in patches:
        r = await client.patch(base, headers=admin.headers, json=body)
        assert r.status_code == 422, (body, r.text)
    queries: list[tuple[str, dict[str, Any]]] = [
        (API, {"limit": 501}),
        (API, {"offset": -1}),
        (f"{base}/deliveries", {"status": "lost"}),
        (f"{base}/deliveries", {"limit": 0}),
    ]
    for path, params in queries:
        r = await client.get(path, headers=admin.headers, params=params)
        assert r.status_code == 422, (path, params)
    for path in [f"{API}/not-a-uuid", f"{API}/deliveries/123/replay"]:
        r = await client.request(
            "POST" if path.endswith("replay") else "GET", path, headers=admin.headers
        )
        assert r.status_code == 422
    got = (await client.get(base, headers=admin.headers)).json()
    assert got["events"] == ALL_LEAD_EVENTS and got["endpoint_url"] == receiver.url


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/hook",
        "http://127.0.0.1/hook",
        "http://127.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://no-such-host.invalid/hook",
    ],
)
async def test_private_targets_are_refused(
    client: httpx.AsyncClient, app: FastAPI, factory: Factory, session: AsyncSession, url: str
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"webhooks_allow_private": False})
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        API, headers=admin.headers, json={"events": ["lead.created"], "endpoint_url": url}
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "webhook_target_refused"
    assert r.json()["errors"][0]["loc"] == ["body", "endpoint_url"]
    assert await _count(session) == 0


async def test_public_targets_pass_and_a_change_to_private_is_refused(
    client: httpx.AsyncClient, app: FastAPI, factory: Factory
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"webhooks_allow_private": False})
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        API,
        headers=admin.headers,
        json={"events": ["lead.created"], "endpoint_url": "https://93.184.215.14/hooks"},
    )
    assert r.status_code == 201, r.text
    r = await client.patch(
        f"{API}/{r.json()['id']}",
        headers=admin.headers,
        json={"endpoint_url": "http://[::ffff:169.254.169.254]/"},
    )
    assert r.status_code == 422 and r.json()["code"] == "webhook_target_refused"


async def test_the_number_of_endpoints_is_capped(
    client: httpx.AsyncClient, app: FastAPI, factory: Factory, receiver: Receiver
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"webhooks_max_endpoints": 2})
    org = await factory.org()
    admin = await factory.member(org)
    await subscribe(client, admin.headers, receiver)
    await subscribe(client, admin.headers, receiver)
    r = await client.post(
        API, headers=admin.headers, json={"events": ["lead.created"], "endpoint_url": receiver.url}
    )
    assert r.status_code == 409 and r.json()["code"] == "webhook_limit_reached"
