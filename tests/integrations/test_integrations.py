"""Integrations: connect (tested against local stand-ins), credentials encrypted and never
shown, disconnect, and the organisation's connection used instead of the server's settings
(SMTP for its emails, OpenAI for its AI calls, Twilio for its calls and their callbacks)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.calls.twilio import compute_signature
from leadflow.config import Settings
from leadflow.integrations.keys import rotate_all
from leadflow.kit import crypto
from leadflow.kit.clock import clock
from leadflow.models.audit_log import AuditLog
from leadflow.models.integration import Integration
from leadflow.models.outbox import OutboxMessage
from leadflow.notifications.service import queue_email
from leadflow.worker import outbox
from leadflow.worker.jobs import JobContext, run_job
from tests.ai.fake_openai import FakeOpenAI
from tests.ai.test_endpoints import SEED_BODY
from tests.calls.conftest import TUESDAY_10, submit
from tests.calls.fake_twilio import FakeTwilio
from tests.fixtures.factories import Factory
from tests.fixtures.smtp import Inbox
from tests.integrations.conftest import SID, SMTP_PASSWORD, SMTP_USER, TOKEN

API = "/api/v1/admin/integrations"


def _smtp(port: int, password: str = SMTP_PASSWORD) -> dict[str, Any]:
    return {
        "credentials": {"username": SMTP_USER, "password": password},
        "config": {"host": "127.0.0.1", "port": port, "sender": "Vertrieb <sales@example.com>"},
    }


async def _stored(session: AsyncSession, type_: str) -> Integration:
    row = await session.scalar(select(Integration).where(Integration.type == type_))
    assert row is not None
    await session.refresh(row)
    return row


async def test_list_shows_every_type_and_the_process_defaults(
    client: httpx.AsyncClient, app: FastAPI, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.get(API, headers=admin.headers)
    assert r.status_code == 200
    assert r.json() == [
        {"type": t, "name": n, "status": "not_connected", "source": None, "config": c,
         "last_sync": None}
        for t, n, c in [
            ("smtp", "SMTP", {}),
            ("openai", "OpenAI", {}),
            ("twilio", "Twilio", {}),
            ("webhook", "Webhooks", {"active_endpoints": 0, "disabled_endpoints": 0}),
        ]
    ]  # fmt: skip
    app.state.settings = app.state.settings.model_copy(
        update={"smtp_host": "relay.example.com", "smtp_password": "server-secret"}
    )
    smtp = (await client.get(API, headers=admin.headers)).json()[0]
    assert smtp["source"] == "process" and smtp["status"] == "not_connected"
    assert smtp["config"] == {
        "host": "relay.example.com",
        "port": 587,
        "sender": "Leadflow <noreply@localhost>",
        "starttls": False,
        "use_tls": False,
    }


async def test_smtp_connects_encrypted_and_sends_the_organisations_mail(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    smtp_login: tuple[int, Inbox],
) -> None:
    port, inbox = smtp_login
    org = await factory.org()
    admin = await factory.member(org)
    wrong = await client.post(f"{API}/smtp/connect", headers=admin.headers, json=_smtp(port, "no"))
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["code"] == "integration_connection_failed"
    assert wrong.json()["detail"].startswith("SMTP: the server answered 535")
    assert await session.scalar(select(func.count()).select_from(Integration)) == 0

    r = await client.post(f"{API}/smtp/connect", headers=admin.headers, json=_smtp(port))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "connected" and body["source"] == "organization"
    assert body["check"] == {"logged_in": True}
    assert body["config"]["host"] == "127.0.0.1" and "credentials" not in body
    assert SMTP_PASSWORD not in r.text
    listed = (await client.get(API, headers=admin.headers)).text
    assert SMTP_PASSWORD not in listed and SMTP_USER not in listed
    row = await _stored(session, "smtp")
    assert SMTP_PASSWORD not in row.credentials  # encrypted at rest
    assert json.loads(crypto.decrypt(jobs.settings, row.credentials)) == {
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
    }
    audit = await session.scalar(select(AuditLog).where(AuditLog.action == "integration.connect"))
    assert audit is not None and audit.after is not None
    assert SMTP_PASSWORD not in json.dumps(audit.after)
    assert audit.after["credential_fields"] == ["password", "username"]

    # No server-wide SMTP is configured: the organisation's relay sends its email.
    queued = await queue_email(
        session,
        organization_id=org.id,
        to="kunde@example.com",
        template="invitation",
        language="de",
        context={
            "recipient_name": "Kunde",
            "organization_name": "ACME",
            "inviter_name": "Eva",
            "login_url": "https://crm.example.com",
        },
        delivery_key="invite-1",
    )
    await session.commit()
    assert await run_job(jobs, "outbox.deliver", str(queued.id)) == "sent"
    assert inbox.wait_for(1)
    assert inbox.messages[0]["From"] == "Vertrieb <sales@example.com>"
    assert inbox.messages[0]["To"] == "kunde@example.com"
    await session.refresh(queued)
    assert queued.result is not None and queued.result["relay"] == "organization"

    assert (await client.delete(f"{API}/smtp/disconnect", headers=admin.headers)).status_code == 204
    assert await session.scalar(select(func.count()).select_from(Integration)) == 0
    again = await client.delete(f"{API}/smtp/disconnect", headers=admin.headers)
    assert again.status_code == 404 and again.json()["code"] == "integration_not_connected"


async def test_invitations_go_through_the_organisations_relay(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    smtp_login: tuple[int, Inbox],
) -> None:
    """An invitation is an email of the organisation like any other: with no server-wide SMTP,
    its connected relay sends it (it was only logged before)."""
    port, inbox = smtp_login
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(f"{API}/smtp/connect", headers=admin.headers, json=_smtp(port))
    assert r.status_code == 200, r.text
    r = await client.post(
        "/api/v1/admin/users",
        headers=admin.headers,
        json={
            "full_name": "Nina",
            "email": "nina@example.com",
            "role": "counselor",
            "send_invite": True,
        },
    )
    assert r.status_code == 201, r.text
    assert await outbox.relay(jobs) == 1
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.organization_id == org.id))
    assert row is not None
    await session.refresh(row)
    assert (row.status, (row.result or {}).get("relay")) == ("sent", "organization")
    assert inbox.wait_for(1)
    assert inbox.messages[0]["To"] == "nina@example.com"


async def test_openai_key_is_tested_and_answers_the_organisations_ai_calls(
    client: httpx.AsyncClient, factory: Factory, openai_server: FakeOpenAI
) -> None:
    org, other = await factory.org(), await factory.org()
    admin, stranger = await factory.member(org), await factory.member(other)
    base = {"config": {"model": "gpt-4o-mini", "base_url": openai_server.base_url}}
    bad_key = await client.post(
        f"{API}/openai/connect",
        headers=admin.headers,
        json={**base, "credentials": {"api_key": "sk-x"}},
    )
    assert bad_key.status_code == 422
    assert bad_key.json()["detail"] == "OpenAI: the API answered HTTP 401"
    no_model = await client.post(
        f"{API}/openai/connect",
        headers=admin.headers,
        json={"credentials": {"api_key": "sk-org"}, "config": {**base["config"], "model": "gpt-9"}},
    )
    assert no_model.status_code == 422
    assert no_model.json()["detail"] == "OpenAI: model 'gpt-9' is not available to this key"
    r = await client.post(
        f"{API}/openai/connect",
        headers=admin.headers,
        json={**base, "credentials": {"api_key": "sk-org"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["check"] == {"models": 2, "model": "gpt-4o-mini"}
    assert "sk-org" not in r.text

    before = len(openai_server.requests)
    answer = await client.post("/api/v1/ai", headers=admin.headers, json=SEED_BODY)
    assert answer.status_code == 200, answer.text
    assert answer.json()["provider"] == "openai" and answer.json()["fallback"] is False
    sent = openai_server.requests[before]
    assert sent.path == "/v1/responses"
    assert sent.headers["authorization"] == "Bearer sk-org"
    assert sent.body["model"] == "gpt-4o-mini"
    # Another organisation keeps the server's (local) provider.
    theirs = await client.post("/api/v1/ai", headers=stranger.headers, json=SEED_BODY)
    assert theirs.json()["provider"] == "local"
    assert len(openai_server.requests) == before + 1


async def test_twilio_account_places_the_calls_and_signs_the_callbacks(
    client: httpx.AsyncClient,
    app: FastAPI,
    factory: Factory,
    jobs: JobContext,
    twilio_server: FakeTwilio,
) -> None:
    clock.freeze(TUESDAY_10)
    app.state.settings.public_url = "https://crm.example.com"
    org = await factory.org()
    admin = await factory.member(org)
    config = {"from_number": "+493098765432", "api_base": twilio_server.base_url}
    wrong = await client.post(
        f"{API}/twilio/connect",
        headers=admin.headers,
        json={"credentials": {"account_sid": SID, "auth_token": "wrong-token"}, "config": config},
    )
    assert wrong.status_code == 422 and wrong.json()["detail"] == "Twilio: Twilio answered HTTP 401"
    r = await client.post(
        f"{API}/twilio/connect",
        headers=admin.headers,
        json={"credentials": {"account_sid": SID, "auth_token": TOKEN}, "config": config},
    )
    assert r.status_code == 200, r.text
    assert r.json()["check"] == {"account_status": "active"}

    # The server's voice provider is the simulated one; this organisation calls via Twilio.
    call_id = (await submit(client, admin.headers))["id"]
    assert await run_job(jobs, "calls.process", call_id) == "calling"
    placed = twilio_server.requests[-1]
    assert placed.method == "POST" and placed.path == f"/2010-04-01/Accounts/{SID}/Calls.json"
    expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert placed.headers["authorization"] == f"Basic {expected}"
    path = f"/api/v1/call-requests/{call_id}/provider-events"
    sid = (await client.get(f"/api/v1/call-requests/{call_id}", headers=admin.headers)).json()[
        "provider_call_id"
    ]
    params = {"CallSid": sid, "CallStatus": "in-progress"}
    url = f"https://crm.example.com{path}"
    server_signed = compute_signature("", url, list(params.items()))
    r = await client.post(path, data=params, headers={"X-Twilio-Signature": server_signed})
    assert r.status_code == 403 and r.json()["code"] == "invalid_signature"
    org_signed = compute_signature(TOKEN, url, list(params.items()))
    r = await client.post(path, data=params, headers={"X-Twilio-Signature": org_signed})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_progress"


async def test_non_admins_get_403_other_orgs_see_nothing_and_bad_input_is_422(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    smtp_login: tuple[int, Inbox],
) -> None:
    port, _ = smtp_login
    org, other = await factory.org(), await factory.org()
    admin, stranger = await factory.member(org), await factory.member(other)
    manager = await factory.member(org, "manager")
    for method, path, body in [
        ("GET", API, None),
        ("POST", f"{API}/smtp/connect", _smtp(port)),
        ("DELETE", f"{API}/smtp/disconnect", None),
    ]:
        r = await client.request(method, path, headers=manager.headers, json=body)
        assert r.status_code == 403 and r.json()["code"] == "missing_permission"
    assert (
        await client.post(f"{API}/smtp/connect", headers=admin.headers, json=_smtp(port))
    ).status_code == 200
    # Another organisation neither sees nor removes it.
    theirs = (await client.get(API, headers=stranger.headers)).json()
    assert theirs[0]["status"] == "not_connected"
    r = await client.delete(f"{API}/smtp/disconnect", headers=stranger.headers)
    assert r.status_code == 404 and r.json()["code"] == "integration_not_connected"

    bad: list[tuple[str, dict[str, Any]]] = [
        ("fax", _smtp(port)),
        ("smtp", {}),
        ("smtp", {"credentials": {}, "config": {}}),
        ("smtp", {**_smtp(port), "extra": 1}),
        ("smtp", {"credentials": {"username": "u"}, "config": _smtp(port)["config"]}),
        ("smtp", {**_smtp(port), "config": {**_smtp(port)["config"], "port": 70000}}),
        ("smtp", {**_smtp(port), "config": {**_smtp(port)["config"], "sender": "nobody"}}),
        ("smtp", {**_smtp(port), "config": {**_smtp(port)["config"], "host": "a b"}}),
        ("smtp", {**_smtp(port), "config": {**_smtp(port)["config"], "starttls": True,
                                            "use_tls": True}}),
        ("openai", {"credentials": {"api_key": ""}, "config": {}}),
        ("openai", {"credentials": {"api_key": "k"}, "config": {"base_url": "file:///etc"}}),
        ("twilio", {"credentials": {"account_sid": "nope", "auth_token": "12345678"},
                    "config": {"from_number": "+493098765432"}}),
        ("twilio", {"credentials": {"account_sid": SID, "auth_token": "12345678"},
                    "config": {"from_number": "12345"}}),
        ("smtp", {"credentials": None, "config": None}),
    ]  # fmt: skip
    for type_, body in bad:
        r = await client.post(f"{API}/{type_}/connect", headers=admin.headers, json=body)
        assert r.status_code == 422, (type_, body, r.text)
        assert r.json()["code"] == "validation_error"
    r = await client.post(f"{API}/webhook/connect", headers=admin.headers, json={})
    assert r.status_code == 422 and r.json()["code"] == "integration_not_connectable"
    r = await client.delete(f"{API}/webhook/disconnect", headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "integration_not_connectable"
    assert await session.scalar(select(func.count()).select_from(Integration)) == 1


@pytest.mark.parametrize(
    ("type_", "body"),
    [
        ("smtp", {"credentials": {}, "config": {"host": "127.0.0.1", "sender": "a@example.com"}}),
        ("smtp", {"credentials": {}, "config": {"host": "localhost", "sender": "a@example.com"}}),
        ("openai", {"credentials": {"api_key": "k"}, "config": {"base_url": "http://[::1]:9/v1"}}),
        (
            "twilio",
            {
                "credentials": {"account_sid": SID, "auth_token": "12345678"},
                "config": {"from_number": "+493098765432", "api_base": "http://169.254.169.254"},
            },
        ),
    ],
)
async def test_private_hosts_are_refused(
    client: httpx.AsyncClient, app: FastAPI, factory: Factory, type_: str, body: dict[str, Any]
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"integrations_allow_private": False})
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(f"{API}/{type_}/connect", headers=admin.headers, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "integration_target_forbidden"


async def test_rotate_key_re_encrypts_under_the_new_key(
    client: httpx.AsyncClient,
    app: FastAPI,
    factory: Factory,
    session: AsyncSession,
    smtp_login: tuple[int, Inbox],
) -> None:
    port, _ = smtp_login
    org = await factory.org()
    admin = await factory.member(org)
    assert (
        await client.post(f"{API}/smtp/connect", headers=admin.headers, json=_smtp(port))
    ).status_code == 200
    webhook = await client.post(
        f"{API}/webhooks",
        headers=admin.headers,
        json={"events": ["lead.created"], "endpoint_url": "https://93.184.215.14/h"},
    )
    assert webhook.status_code == 201
    old: Settings = app.state.settings
    new = old.model_copy(update={"secret_key": "the-next-secret-key-" + "y" * 30})
    row = await _stored(session, "smtp")
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(new, row.credentials)
    # While the old key is listed as previous, both read; the list shows the state.
    assert crypto.decrypt(
        new.model_copy(update={"previous_secret_keys": [old.secret_key]}), row.credentials
    )
    with pytest.raises(crypto.SecretUnreadable):
        await rotate_all(session, new, [])
    await session.rollback()
    counts = await rotate_all(session, new, [old.secret_key])
    assert counts == {"integrations": 1, "webhook_secrets": 1}
    await session.commit()
    row = await _stored(session, "smtp")
    assert json.loads(crypto.decrypt(new, row.credentials))["password"] == SMTP_PASSWORD
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(old, row.credentials)
