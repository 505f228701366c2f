"""No secret reaches a log: a full flow (sign-up, login, refresh, API key, invitation and its
acceptance, webhook secrets, an import, integration credentials, impersonation, a report
download) runs with every logger at DEBUG, then each record is searched for every secret
string the flow handled."""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from fastapi import FastAPI

from leadflow.config import Settings
from leadflow.db import migrate
from leadflow.db.engine import Database
from leadflow.kit.jsonlog import JsonFormatter
from leadflow.kit.logredact import origin_of, redact_path
from leadflow.worker import outbox
from leadflow.worker.jobs import JobContext, RecordingQueue, run_job
from tests.ai.fake_openai import FakeOpenAI
from tests.calls.fake_twilio import FakeTwilio
from tests.fixtures.factories import make_settings
from tests.fixtures.server import serve
from tests.fixtures.smtp import Inbox, free_port
from tests.webhooks.receiver import Receiver

API = "/api/v1"
PASSWORD = "first-password-Kq83v"
WRONG_PASSWORD = "wrong-password-Zt41m"
MEMBER_PASSWORD = "member-password-Hw62p"
INVITED_PASSWORD = "invited-password-Rb95x"
SMTP_PASSWORD = "smtp-password-Lc27d"
OPENAI_KEY = "sk-org-key-Vn58s"
TWILIO_SID = "AC" + "7" * 32
TWILIO_TOKEN = "twilio-token-Gp14j"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Chat and automation services put their secret in the webhook URL's path. The URL is stored
# as it is (deliveries need it), so the database drivers' statement logging (LEADFLOW_DB_ECHO,
# or their loggers at DEBUG) shows it like any stored column; every other logger must not.
WEBHOOK_URL_SECRET = "T01/B02/hook-path-secret-Wd73q"
DATABASE_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg")
# The stand-in SMTP server (aiosmtpd) logs the mail it receives, the invitation link included:
# that is the recipient's copy, not Leadflow's log.
NOT_OURS = frozenset({"mail.log"})


@pytest.fixture
def settings(tmp_root: Path, database: Database) -> Settings:
    """Test settings whose integrations and webhooks may target the local stand-ins."""
    return make_settings(
        database.url,
        tmp_root / "data",
        integrations_allow_private=True,
        webhooks_allow_private=True,
    )


@pytest.fixture(autouse=True)
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every logger, including the libraries' and those that do not propagate, at DEBUG into
    caplog. Autouse so that it runs before the database connection is opened (SQLAlchemy
    decides per connection whether it logs statements)."""
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    attached = [lg for lg in loggers if not lg.propagate]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    for lg in attached:
        lg.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    yield
    for lg in attached:
        lg.removeHandler(caplog.handler)
    for lg, level, disabled in saved:
        lg.setLevel(level)
        lg.disabled = disabled


@pytest.fixture
def smtp_relay() -> Iterator[tuple[int, Inbox]]:
    """An SMTP server on 127.0.0.1 that requires a login (any user, SMTP_PASSWORD)."""

    def authenticate(*args: Any) -> AuthResult:
        return AuthResult(success=getattr(args[-1], "password", b"") == SMTP_PASSWORD.encode())

    inbox, port = Inbox(), free_port()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            authenticator=authenticate,
            auth_required=True,
            auth_require_tls=False,
        )
        controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    """The OpenAI stand-in, insisting on OPENAI_KEY."""
    server = FakeOpenAI().start()
    server.api_key = OPENAI_KEY
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def twilio_server() -> Iterator[FakeTwilio]:
    """The Twilio stand-in, insisting on TWILIO_SID / TWILIO_TOKEN."""
    server = FakeTwilio().start()
    server.credentials = (TWILIO_SID, TWILIO_TOKEN)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver that verifies signatures."""
    rx = Receiver().start()
    try:
        yield rx
    finally:
        rx.stop()


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, (r.request.method, r.request.url.path, r.text)
    return r.json() if r.content else None


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _drain(jobs: JobContext, queue: RecordingQueue) -> None:
    """Run the queued jobs (and those they queue) and deliver the outbox."""
    for _ in range(5):
        items, queue.items[:] = list(queue.items), []
        for name, args, _eta in items:
            await run_job(jobs, name, *args)
        await outbox.relay(jobs)
        if not queue.items:
            return


# The stand-in SMTP server warns about AUTH without TLS on each connection (it is on loopback).
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_no_secret_of_a_full_flow_is_logged(
    app: FastAPI,
    client: httpx.AsyncClient,
    jobs: JobContext,
    queue: RecordingQueue,
    caplog: pytest.LogCaptureFixture,
    smtp_relay: tuple[int, Inbox],
    openai_server: FakeOpenAI,
    twilio_server: FakeTwilio,
    receiver: Receiver,
) -> None:
    secrets: dict[str, str] = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "member password": MEMBER_PASSWORD,
        "invited password": INVITED_PASSWORD,
        "SMTP password": SMTP_PASSWORD,
        "OpenAI key": OPENAI_KEY,
        "Twilio token": TWILIO_TOKEN,
        "webhook secret": WEBHOOK_SECRET,
        "server secret key": app.state.settings.secret_key,
    }

    # Sign-up, a failed and two good logins (JSON and form), a refresh.
    signed_up = _ok(
        await client.post(
            f"{API}/auth/register",
            json={
                "email": "owner@example.com",
                "password": PASSWORD,
                "full_name": "Olga Owner",
                "organization_name": "Secretive GmbH",
            },
        ),
        201,
    )
    secrets["sign-up access token"] = signed_up["access_token"]
    secrets["sign-up refresh token"] = signed_up["refresh_token"]
    r = await client.post(
        f"{API}/auth/login", json={"email": "owner@example.com", "password": WRONG_PASSWORD}
    )
    assert r.status_code == 401, r.text
    pair = _ok(
        await client.post(
            f"{API}/auth/login", json={"email": "owner@example.com", "password": PASSWORD}
        )
    )
    form = _ok(
        await client.post(
            f"{API}/auth/login", data={"username": "owner@example.com", "password": PASSWORD}
        )
    )
    secrets["login access token"], secrets["login refresh token"] = (
        pair["access_token"],
        pair["refresh_token"],
    )
    secrets["form login access token"] = form["access_token"]
    pair = _ok(
        await client.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    )
    secrets["refreshed access token"] = pair["access_token"]
    secrets["refreshed refresh token"] = pair["refresh_token"]
    admin = _bearer(pair["access_token"])

    # The organisation's integrations: credentials tested against the stand-ins.
    smtp_port, inbox = smtp_relay
    _ok(
        await client.post(
            f"{API}/admin/integrations/smtp/connect",
            headers=admin,
            json={
                "credentials": {"username": "relay-user", "password": SMTP_PASSWORD},
                "config": {
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "sender": "Sales <sales@example.com>",
                },
            },
        )
    )
    _ok(
        await client.post(
            f"{API}/admin/integrations/openai/connect",
            headers=admin,
            json={
                "credentials": {"api_key": OPENAI_KEY},
                "config": {"model": "gpt-4o-mini", "base_url": openai_server.base_url},
            },
        )
    )
    _ok(
        await client.post(
            f"{API}/admin/integrations/twilio/connect",
            headers=admin,
            json={
                "credentials": {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
                "config": {"from_number": "+493098765432", "api_base": twilio_server.base_url},
            },
        )
    )

    # An API key, used as X-API-Key and as a bearer value.
    key = _ok(
        await client.post(
            f"{API}/admin/api-keys",
            headers=admin,
            json={"name": "CRM sync", "scopes": ["leads:read", "leads:write"]},
        ),
        201,
    )
    secrets["API key"] = key["api_key"]
    _ok(await client.get(f"{API}/auth/me", headers={"X-API-Key": key["api_key"]}))
    _ok(await client.get(f"{API}/leads", headers=_bearer(key["api_key"])))

    # A webhook endpoint with a chosen secret, then a generated one; a signed test delivery.
    hook = _ok(
        await client.post(
            f"{API}/admin/integrations/webhooks",
            headers=admin,
            json={
                "events": ["lead.created"],
                "endpoint_url": f"{receiver.url}/{WEBHOOK_URL_SECRET}",
                "secret": WEBHOOK_SECRET,
            },
        ),
        201,
    )
    rotated = _ok(
        await client.post(
            f"{API}/admin/integrations/webhooks/{hook['id']}/rotate-secret", headers=admin
        )
    )
    secrets["rotated webhook secret"] = rotated["secret"]
    receiver.secret = rotated["secret"]
    assert _ok(
        await client.post(f"{API}/admin/integrations/webhooks/{hook['id']}/test", headers=admin)
    )["success"]

    # A member created with a password, one invited by email who sets theirs.
    _ok(
        await client.post(
            f"{API}/users",
            headers=admin,
            json={
                "email": "member@example.com",
                "full_name": "Max Member",
                "role": "counselor",
                "password": MEMBER_PASSWORD,
            },
        ),
        201,
    )
    invited = _ok(
        await client.post(
            f"{API}/admin/users",
            headers=admin,
            json={
                "full_name": "Nina Neu",
                "email": "nina@example.com",
                "role": "counselor",
                "send_invite": True,
            },
        ),
        201,
    )
    # An import: its leads go out to the webhook as `lead.created`.
    _ok(
        await client.post(
            f"{API}/leads/import",
            headers={**admin, "Content-Type": "text/csv"},
            content=b"first_name,last_name,email\nIda,Import,ida@example.com\n",
        )
    )
    await _drain(jobs, queue)
    # Sent through the organisation's own relay (the email itself carries the link).
    assert inbox.wait_for(1)
    [mail] = inbox.messages
    body = mail.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())
    match = re.search(r"accept-invite\?token=([A-Za-z0-9_-]{43})", text)
    assert match is not None, text
    secrets["invitation token"] = match.group(1)
    accepted = _ok(
        await client.post(
            f"{API}/auth/accept-invite",
            json={"token": match.group(1), "password": INVITED_PASSWORD},
        )
    )
    secrets["invited access token"] = accepted["access_token"]
    secrets["invited refresh token"] = accepted["refresh_token"]
    _ok(
        await client.post(
            f"{API}/auth/login", json={"email": "nina@example.com", "password": INVITED_PASSWORD}
        )
    )

    # The AI bridge on the organisation's OpenAI key.
    _ok(
        await client.post(
            f"{API}/ai",
            headers=admin,
            json={
                "action": "generate_message",
                "data": {
                    "messages": [{"role": "user", "content": "Ein Follow-up für Ida"}],
                    "lead": {"name": "Ida Import", "status": "offen"},
                },
            },
        )
    )

    # Impersonation: a short-lived token acting as the invited member.
    acting = _ok(
        await client.post(f"{API}/admin/users/{invited['user_id']}/impersonate", headers=admin)
    )
    secrets["impersonation token"] = acting["impersonation_token"]
    _ok(await client.get(f"{API}/auth/me", headers=_bearer(acting["impersonation_token"])))

    # A report export: the download link's token is a credential of its own.
    report = _ok(
        await client.post(
            f"{API}/reports/build", headers=admin, json={"name": "All", "fields": ["source"]}
        ),
        201,
    )
    export = _ok(
        await client.post(
            f"{API}/reports/export",
            headers=admin,
            json={"report_id": report["report_id"], "format": "csv"},
        )
    )
    secrets["download token"] = export["download_url"].rsplit("/", 1)[-1]
    download = await client.get(export["download_url"])
    assert download.status_code == 200, download.text

    await _drain(jobs, queue)
    _ok(await client.post(f"{API}/auth/logout", headers=admin), 204)

    formatter = JsonFormatter()
    records = [r for r in caplog.records if r.name not in NOT_OURS]
    # The capture works: SQL statements, outbound HTTP and the app's own lines are there.
    names = {r.name.split(".")[0] for r in records}
    assert {"sqlalchemy", "httpx", "leadflow"} <= names, names
    # Each record as a handler would write it, and its raw attributes (args, extras).
    texts = [(r.name, f"{formatter.format(r)}\n{r.__dict__!r}") for r in records]
    leaks = [
        f"{what} in {name}: {text[:300]}"
        for name, text in texts
        for what, secret in secrets.items()
        if secret in text
    ]
    leaks += [
        f"webhook URL in {name}: {text[:300]}"
        for name, text in texts
        if not name.startswith(DATABASE_LOGGERS) and WEBHOOK_URL_SECRET in text
    ]
    assert not leaks, "\n".join(leaks)


def test_the_served_access_log_keeps_no_credential(tmp_path: Path) -> None:
    """`leadflow serve` at DEBUG: uvicorn's access log shows the download path and secret
    query values redacted; no password or token anywhere on stderr. (The log lines are the
    same on either engine: SQLite only.)"""
    url = f"sqlite+aiosqlite:///{tmp_path / 'leadflow.db'}"
    migrate.upgrade(url)
    with (
        serve(url, tmp_path, log_level="DEBUG") as served,
        httpx.Client(base_url=served.base_url, timeout=30) as c,
    ):
        pair = _ok(
            c.post(
                f"{API}/auth/register",
                json={
                    "email": "owner@example.com",
                    "password": PASSWORD,
                    "full_name": "Olga Owner",
                    "organization_name": "Served GmbH",
                },
            ),
            201,
        )
        admin = _bearer(pair["access_token"])
        report = _ok(
            c.post(
                f"{API}/reports/build", headers=admin, json={"name": "All", "fields": ["source"]}
            ),
            201,
        )
        export = _ok(
            c.post(
                f"{API}/reports/export",
                headers=admin,
                json={"report_id": report["report_id"], "format": "csv"},
            )
        )
        path = urlsplit(export["download_url"]).path
        assert c.get(path).status_code == 200
        assert c.get("/health", params={"access_token": pair["refresh_token"]}).status_code == 200
    log = served.log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line["msg"] for line in lines if line["logger"] == "uvicorn.access"]
    assert any(f'"GET {API}/reports/downloads/[redacted] HTTP/1.1" 200' in m for m in access), (
        access
    )
    assert any('"GET /health?access_token=[redacted] HTTP/1.1" 200' in m for m in access), access
    for what, secret in {
        "password": PASSWORD,
        "access token": pair["access_token"],
        "refresh token": pair["refresh_token"],
        "download token": path.rsplit("/", 1)[-1],
    }.items():
        assert secret not in log, f"{what} on the served process's stderr"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/reports/downloads/abc.123.sig", "/api/v1/reports/downloads/[redacted]"),
        ("/api/v1/leads?q=ida&limit=5", "/api/v1/leads?q=ida&limit=5"),
        ("/x?token=t1&q=a&API_KEY=k2", "/x?token=[redacted]&q=a&API_KEY=[redacted]"),
        ("/x?client_secret=s#frag", "/x?client_secret=[redacted]#frag"),
    ],
)
def test_access_log_paths_are_redacted(path: str, expected: str) -> None:
    assert redact_path(path) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/services/T0/B0/secret", "https://hooks.example.com/[redacted]"),
        (
            "https://user:pw@api.example.com:8443/v1?key=k",
            "https://api.example.com:8443/[redacted]",
        ),
        ("https://api.openai.com", "https://api.openai.com"),
        ("http://[::1]:9000/hook", "http://[::1]:9000/[redacted]"),
    ],
)
def test_outbound_urls_keep_only_their_origin(url: str, expected: str) -> None:
    assert origin_of(url) == expected
