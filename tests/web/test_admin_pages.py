"""Admin pages: users and invitations, roles, API keys, webhooks, integrations, the audit log,
jobs and emails, system health — the API's services, permissions and organisation bounds."""

from __future__ import annotations

import re
import uuid
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.api_key import ApiKey
from leadflow.models.audit_log import AuditLog
from leadflow.models.lead import Lead
from leadflow.models.outbox import OutboxMessage
from leadflow.models.role import Role
from leadflow.models.user import User
from leadflow.web.routes import admin as admin_pages
from tests.accounts.helpers import latest_invitation
from tests.fixtures.factories import Factory
from tests.web.helpers import Browser, browser
from tests.webhooks.receiver import Receiver

T = TypeVar("T")


async def _fresh(session: AsyncSession, model: type[T], row_id: uuid.UUID) -> T:
    column = model.id  # type: ignore[attr-defined]
    row = await session.scalar(
        select(model).where(column == row_id).execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def test_every_section_needs_its_permission(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await browser(factory, org)
    counselor = await browser(factory, org, "counselor")
    assert "/admin" in (await admin.get(client, "/")).text
    assert 'href="/admin"' not in (await counselor.get(client, "/")).text
    for path in ("users", "roles", "api-keys", "webhooks", "integrations", "audit", "jobs"):
        assert (await admin.get(client, f"/admin/{path}")).status_code == 200, path
        assert (await counselor.get(client, f"/admin/{path}")).status_code == 403, path
    assert (await counselor.get(client, "/admin")).status_code == 403
    index = await admin.get(client, "/admin")
    assert (index.status_code, index.headers["location"]) == (303, "/admin/users")


async def test_invite_reinvite_and_deactivate_a_member(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    me = await browser(factory, org)
    form = {"full_name": "Nina Neu", "email": "nina@example.com", "role": "counselor"}
    assert (await me.post(client, "/admin/users", form, csrf=False)).status_code == 403
    r = await me.post(client, "/admin/users", form)
    assert (r.status_code, r.headers["location"]) == (303, "/admin/users?done=invited")
    nina = await session.scalar(select(User).where(User.email == "nina@example.com"))
    assert nina is not None and nina.organization_id == org.id
    first = await latest_invitation(session, nina.id)
    page = await me.get(client, "/admin/users?done=invited")
    assert "Invitation sent" in page.text and "Nina Neu" in page.text
    assert f"/admin/users/{nina.id}/invite" in page.text  # no password yet: invite again
    again = await me.post(client, "/admin/users", form)
    assert again.status_code == 422 and "Nina Neu" in again.text  # the email is taken
    bad = await me.post(client, "/admin/users", {**form, "email": "nope"})
    assert bad.status_code == 422 and 'aria-describedby="err-email"' in bad.text
    assert (await me.post(client, f"/admin/users/{nina.id}/invite")).status_code == 303
    assert (await latest_invitation(session, nina.id)).id != first.id

    colleague = await factory.user(org, "counselor")
    lead = await factory.lead(org, assignee_id=colleague.id)
    r = await me.post(
        client, f"/admin/users/{colleague.id}/deactivate", {"reassign_to": str(nina.id)}
    )
    assert r.status_code == 303
    assert (await _fresh(session, User, colleague.id)).status == "inactive"
    assert (await _fresh(session, Lead, lead.id)).assignee_id == nina.id
    stranger = await factory.user(other, "counselor")
    r = await me.post(client, f"/admin/users/{stranger.id}/deactivate", {})
    assert r.status_code == 404
    assert (await _fresh(session, User, stranger.id)).status == "active"


async def test_roles_edit_custom_permissions_and_keep_system_roles(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    me = await browser(factory, org)
    role = await factory.role(org, ["leads:read"], row_scope="own")
    page = await me.get(client, "/admin/roles")
    assert role.name in page.text
    form = {
        "description": "Readers",
        "permissions": ["leads:read", "tasks:read"],
        "row_scope": "team",
    }
    r = await me.post(client, f"/admin/roles/{role.id}", form)
    assert r.status_code == 303
    saved = await _fresh(session, Role, role.id)
    assert sorted(saved.permissions) == ["leads:read", "tasks:read"]
    assert saved.row_scope == "team"
    unknown = await me.post(client, f"/admin/roles/{role.id}", {**form, "permissions": ["x:y"]})
    assert unknown.status_code == 422
    system = await session.scalar(
        select(Role).where(Role.organization_id == org.id, Role.name == "counselor")
    )
    assert system is not None
    refused = await me.post(client, f"/admin/roles/{system.id}", form)
    assert refused.status_code == 409  # system roles are fixed (the API answers the same)
    theirs = await factory.role(other, ["leads:read"])
    assert (await me.get(client, f"/admin/roles/{theirs.id}")).status_code == 404
    assert (await me.post(client, f"/admin/roles/{theirs.id}", form)).status_code == 404


async def test_an_api_key_is_shown_once_and_revoked(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    me = await browser(factory, org)
    r = await me.post(client, "/admin/api-keys", {"name": "Zapier", "scopes": ["leads:read"]})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    secret = re.search(r'id="new-key-value">([^<]+)<', r.text)
    assert secret is not None
    key = await session.scalar(select(ApiKey).where(ApiKey.organization_id == org.id))
    assert key is not None and key.scopes == ["leads:read"]
    api = await client.get("/api/v1/leads", headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert api.status_code == 200
    listed = await me.get(client, "/admin/api-keys")
    assert secret.group(1) not in listed.text and key.prefix in listed.text
    empty = await me.post(client, "/admin/api-keys", {"name": ""})
    assert empty.status_code == 422
    stranger = await browser(factory, other)
    assert (await stranger.post(client, f"/admin/api-keys/{key.id}/revoke")).status_code == 404
    assert (await me.post(client, f"/admin/api-keys/{key.id}/revoke")).status_code == 303
    assert (await _fresh(session, ApiKey, key.id)).revoked_at is not None
    manager = await browser(factory, org, "manager")  # no admin:api_keys
    assert (await manager.post(client, "/admin/api-keys", {"name": "x"})).status_code == 403


async def test_webhooks_create_edit_test_and_replay(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    # The receiver listens on 127.0.0.1: private targets allowed, as in the webhook tests.
    app.state.settings = app.state.settings.model_copy(update={"webhooks_allow_private": True})
    org, other = await factory.org(), await factory.org()
    me = await browser(factory, org)
    bad = await me.post(
        client, "/admin/webhooks", {"endpoint_url": "ftp://x", "events": ["lead.created"]}
    )
    assert bad.status_code == 422 and 'aria-describedby="err-endpoint_url"' in bad.text
    receiver = Receiver().start()
    try:
        await _webhook_flow(client, me, await browser(factory, other), receiver)
    finally:
        receiver.stop()


async def _webhook_flow(
    client: httpx.AsyncClient, me: Browser, stranger: Browser, receiver: Receiver
) -> None:
    form = {"endpoint_url": receiver.url, "events": ["lead.created"]}
    r = await me.post(client, "/admin/webhooks", form)
    assert r.status_code == 200 and 'data-testid="new-secret"' in r.text
    endpoint_id = re.search(r'href="/admin/webhooks/([0-9a-f-]{36})"', r.text)
    assert endpoint_id is not None
    url = f"/admin/webhooks/{endpoint_id.group(1)}"
    edited = await me.post(
        client, url, {**form, "events": ["lead.created", "lead.deleted"], "status": "disabled"}
    )
    assert edited.status_code == 303
    page = await me.get(client, url)
    assert 'data-testid="endpoint-status">disabled<' in page.text
    assert 'value="lead.deleted" checked' in page.text
    secret = re.search(r'id="new-secret-value">([^<]+)<', r.text)
    assert secret is not None
    receiver.secret = secret.group(1)
    tested = await me.post(client, f"{url}/test")
    assert tested.status_code == 200 and "Test delivered" in tested.text
    delivery = re.search(r"/deliveries/([0-9a-f-]{36})/replay", tested.text)
    assert delivery is not None
    replay = f"{url}/deliveries/{delivery.group(1)}/replay"
    assert (await me.post(client, replay)).status_code == 409  # the endpoint is disabled
    assert (await me.post(client, url, {**form, "status": "active"})).status_code == 303
    assert (await me.post(client, replay)).status_code == 303
    assert (await stranger.get(client, url)).status_code == 404
    assert (await stranger.post(client, url, form)).status_code == 404


async def test_integrations_connect_failures_are_shown(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    page = await me.get(client, "/admin/integrations")
    assert page.status_code == 200 and 'data-integration="smtp"' in page.text
    refused = await me.post(client, "/admin/integrations/openai/connect", {})
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    assert (await me.post(client, "/admin/integrations/nope/connect", {})).status_code == 422


async def test_the_audit_log_filters_and_pages_by_keyset(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org, other = await factory.org(), await factory.org()
    me = await browser(factory, org)
    for n in range(3):
        session.add(
            AuditLog(
                organization_id=org.id,
                action="lead.updated",
                resource_type="lead",
                resource_id=str(n),
                before={"status": f"before-{n}"},
                after={"status": f"after-{n}"},
            )
        )
    session.add(
        AuditLog(
            organization_id=other.id,
            action="lead.updated",
            resource_type="lead",
            before={"status": "theirs"},
        )
    )
    await session.commit()
    monkeypatch.setattr(admin_pages, "AUDIT_SHOWN", 2)
    first = await me.get(client, "/admin/audit?action=lead.updated")
    assert first.status_code == 200 and first.text.count('data-action="lead.updated"') == 2
    assert "after-2" in first.text and "theirs" not in first.text
    following = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = await me.get(client, following.replace("&amp;", "&"))
    assert second.text.count('data-action="lead.updated"') == 1 and "before-0" in second.text
    assert 'rel="next"' not in second.text
    assert (await me.get(client, "/admin/audit?cursor=garbage")).status_code == 422
    assert (await me.get(client, "/admin/audit?date_from=yesterday")).status_code == 422


async def test_failed_jobs_are_retried(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    me = await browser(factory, org)
    job = await factory.failed_job(org)
    theirs = await factory.failed_job(other)
    page = await me.get(client, "/admin/jobs")
    assert f"/admin/jobs/{job.id}/retry" in page.text and str(theirs.id) not in page.text
    assert "nobody@example.com" in page.text  # the email log
    assert (await me.post(client, f"/admin/jobs/{theirs.id}/retry")).status_code == 404
    assert (await me.post(client, f"/admin/jobs/{job.id}/retry")).status_code == 303
    assert (await _fresh(session, OutboxMessage, job.id)).status == "retry"
    again = await me.post(client, f"/admin/jobs/{job.id}/retry")
    assert again.status_code == 409


async def test_system_health_is_for_the_operators_admins(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    operator, customer = await factory.org(), await factory.org()
    app.state.settings = app.state.settings.model_copy(
        update={"operator_organization_id": operator.id}
    )
    mine = await browser(factory, operator)
    page = await mine.get(client, "/admin/health")
    assert page.status_code == 200 and 'data-testid="health-status"' in page.text
    theirs = await browser(factory, customer)
    assert (await theirs.get(client, "/admin/health")).status_code == 403
