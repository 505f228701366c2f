"""Fixtures of the integration tests: local stand-ins for SMTP (with a login), OpenAI and
Twilio, and settings that let an organisation point at them on 127.0.0.1."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from leadflow.config import Settings
from leadflow.db.engine import Database
from tests.ai.fake_openai import FakeOpenAI
from tests.calls.fake_twilio import FakeTwilio
from tests.fixtures.factories import make_settings
from tests.fixtures.smtp import Inbox, free_port

SMTP_USER, SMTP_PASSWORD = "relay-user-7", "relay-password-1"
SID = "AC" + "1" * 32
TOKEN = "org-twilio-token"


@pytest.fixture
def settings(tmp_root: Path, database: Database) -> Settings:
    """The test settings with private integration hosts allowed (the stand-ins are local)."""
    return make_settings(database.url, tmp_root / "data", integrations_allow_private=True)


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_login() -> Iterator[tuple[int, Inbox]]:
    """(port, inbox) of an SMTP server that requires the login SMTP_USER / SMTP_PASSWORD."""
    inbox = Inbox()
    port = free_port()
    with warnings.catch_warnings():
        # A test server on the loopback interface: AUTH without TLS is what it is for.
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            authenticator=_authenticator,
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
    """The OpenAI stand-in, insisting on the key `sk-org`."""
    server = FakeOpenAI().start()
    server.api_key = "sk-org"
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def twilio_server() -> Iterator[FakeTwilio]:
    """The Twilio stand-in, insisting on SID / TOKEN for the account fetch."""
    server = FakeTwilio().start()
    server.credentials = (SID, TOKEN)
    try:
        yield server
    finally:
        server.stop()
