"""Email rendering (every template × language) and delivery through a real aiosmtpd server."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from jinja2 import Environment, PackageLoader, meta

from leadflow.kit.clock import clock
from leadflow.notifications.email import (
    CONTEXT_KEYS,
    DELIVERY_KEY_HEADER,
    LANGUAGES,
    TEMPLATES,
    Attachment,
    ContextKeys,
    EmailDeliveryError,
    RenderedEmail,
    SmtpConfig,
    build_message,
    render,
    resolve_language,
    send,
)

# The AUTH test server runs without TLS on purpose; aiosmtpd warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


SENDER = "Leadflow Büro <noreply@example.com>"
TO = "max.mueller@example.com"
USERNAME = "mailer"
PASSWORD = "correct-horse-battery-staple"

FULL_CONTEXT: dict[str, dict[str, Any]] = {
    "lead_assigned": {
        "recipient_name": "Max Müller",
        "lead_name": "Lea Kramer",
        "lead_company": "Kramer Maschinenbau GmbH",
        "lead_url": "https://crm.example.com/leads/42",
        "assigned_by": "Anna Schmidt",
        "reason": "Region Süd",
    },
    "sla_reminder": {
        "recipient_name": "Max Müller",
        "lead_name": "Lea Kramer",
        "deadline_local": "24.11.2026, 14:30 Uhr",
        "minutes_left": 30,
        "lead_url": "https://crm.example.com/leads/42",
    },
    "sla_breached": {
        "recipient_name": "Max Müller",
        "lead_name": "Lea Kramer",
        "deadline_local": "24.11.2026, 14:30 Uhr",
        "assignee_name": "Jonas Weber",
        "lead_url": "https://crm.example.com/leads/42",
    },
    "task_due": {
        "recipient_name": "Max Müller",
        "task_title": "Angebot nachfassen",
        "due_local": "25.11.2026, 09:00 Uhr",
        "lead_name": "Lea Kramer",
        "task_url": "https://crm.example.com/tasks/7",
    },
    "invitation": {
        "recipient_name": "Max Müller",
        "organization_name": "Kramer Vertrieb",
        "inviter_name": "Anna Schmidt",
        "login_url": "https://crm.example.com/login",
    },
    "report_ready": {
        "recipient_name": "Max Müller",
        "report_name": "Pipeline nach Phase",
        "row_count": 12,
        "download_url": "https://crm.example.com/api/v1/reports/downloads/abc.def",
        "expires_local": "26.11.2026 09:00",
        "attached": True,
    },
}

# (subject start, phrase in text, phrase in html) per template and language.
EXPECTED: dict[tuple[str, str], tuple[str, str, str]] = {
    ("lead_assigned", "de"): (
        "Neuer Lead zugewiesen: Lea Kramer",
        "Anna Schmidt hat Ihnen einen neuen Lead zugewiesen",
        "Lead öffnen",
    ),
    ("lead_assigned", "en"): (
        "New lead assigned: Lea Kramer",
        "Anna Schmidt has assigned a new lead to you",
        "Open lead",
    ),
    ("sla_reminder", "de"): (
        "SLA-Frist läuft bald ab: Lea Kramer",
        "läuft in 30 Minuten ab",
        "Lead öffnen",
    ),
    ("sla_reminder", "en"): (
        "SLA deadline approaching: Lea Kramer",
        "expires in 30 minutes",
        "Open lead",
    ),
    ("sla_breached", "de"): (
        "SLA-Frist überschritten: Lea Kramer",
        "Zuständig: Jonas Weber",
        "Lead öffnen",
    ),
    ("sla_breached", "en"): (
        "SLA deadline missed: Lea Kramer",
        "Assigned to: Jonas Weber",
        "Open lead",
    ),
    ("task_due", "de"): (
        "Aufgabe fällig: Angebot nachfassen",
        "zum Lead „Lea Kramer“",
        "Aufgabe öffnen",
    ),
    ("task_due", "en"): (
        "Task due: Angebot nachfassen",
        'for the lead "Lea Kramer"',
        "Open task",
    ),
    ("invitation", "de"): (
        "Einladung zu Kramer Vertrieb bei Leadflow",
        "Anna Schmidt hat Sie eingeladen",
        "Jetzt anmelden",
    ),
    ("invitation", "en"): (
        "Invitation to Kramer Vertrieb on Leadflow",
        "Anna Schmidt has invited you to join Kramer Vertrieb",
        "Sign in",
    ),
    ("report_ready", "de"): (
        "Bericht: Pipeline nach Phase",
        "ist fertig (12 Zeilen)",
        "Bericht herunterladen",
    ),
    ("report_ready", "en"): (
        "Report: Pipeline nach Phase",
        "is ready (12 rows)",
        "Download report",
    ),
}

# The value each template must show in subject and body, and the link it must carry.
SUBJECT_VALUE = {
    "lead_assigned": "Lea Kramer",
    "sla_reminder": "Lea Kramer",
    "sla_breached": "Lea Kramer",
    "task_due": "Angebot nachfassen",
    "invitation": "Kramer Vertrieb",
    "report_ready": "Pipeline nach Phase",
}
URL_KEY = {
    "lead_assigned": "lead_url",
    "sla_reminder": "lead_url",
    "sla_breached": "lead_url",
    "task_due": "task_url",
    "invitation": "login_url",
    "report_ready": "download_url",
}
GREETING = {"de": "Hallo Max Müller,", "en": "Hi Max Müller,"}
FOOTER = {
    "de": "Diese E-Mail wurde automatisch von Leadflow versendet.",
    "en": "This email was sent automatically by Leadflow.",
}


# --- SMTP test server ------------------------------------------------------------------


@dataclass
class Received:
    """What the server accepted: envelope addresses and the raw message."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Inbox:
    """aiosmtpd handler: stores accepted messages. RCPT for an address in `rejected` gets
    that reply; a set `data_reply` answers DATA instead of accepting the message."""

    rejected: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.rejected:
            return self.rejected[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        # Runs in the server thread before the 250 reply, so once send() returns the
        # message is in the list; copy because aiosmtpd reuses envelope objects.
        content = envelope.original_content or b""
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content))
        )
        return "250 Message accepted for delivery"


@dataclass
class Relay:
    """A running test server and a config pointing at it."""

    inbox: Inbox
    config: SmtpConfig


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _smtp_server(**smtp_kwargs: Any) -> Iterator[Relay]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), **smtp_kwargs)
    controller.start()
    try:
        yield Relay(inbox, SmtpConfig(host="127.0.0.1", port=controller.port, sender=SENDER))
    finally:
        controller.stop()


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    # handled=False: aiosmtpd then answers a failure with "535 ... credentials invalid".
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A plain SMTP server on 127.0.0.1."""
    with _smtp_server() as running:
        yield running


@pytest.fixture
def auth_relay() -> Iterator[Relay]:
    """An SMTP server that only accepts mail after AUTH (allowed without TLS for the test)."""
    with _smtp_server(
        authenticator=_authenticator, auth_required=True, auth_require_tls=False
    ) as running:
        yield running


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts TCP connections but never sends the SMTP greeting."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


def _email(**overrides: Any) -> RenderedEmail:
    context = {**FULL_CONTEXT["lead_assigned"], **overrides.pop("context", {})}
    return render("lead_assigned", "de", context, to=overrides.pop("to", TO), **overrides)


# --- rendering ---------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_in_every_language(template: str, language: str) -> None:
    rendered = render(template, language, FULL_CONTEXT[template], to=TO)

    subject, text_phrase, html_phrase = EXPECTED[(template, language)]
    assert rendered.subject == subject
    assert rendered.to == TO
    assert rendered.headers == {"Content-Language": language}
    value, url = SUBJECT_VALUE[template], FULL_CONTEXT[template][URL_KEY[template]]
    assert rendered.text.startswith(GREETING[language] + "\n")
    for phrase in (text_phrase, value, url, FOOTER[language]):
        assert phrase in rendered.text
    assert rendered.html is not None
    for phrase in (f'<html lang="{language}">', html_phrase, value, f'href="{url}"'):
        assert phrase in rendered.html
    assert "None" not in rendered.text + rendered.html


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_variables_match_context_keys(template: str) -> None:
    """The documented keys are exactly what the body templates use (no drift)."""
    env = Environment(loader=PackageLoader("leadflow.notifications", "templates"))
    assert env.loader is not None
    keys = CONTEXT_KEYS[template]
    documented = {*keys.required, *keys.optional}
    for language in LANGUAGES:
        for kind in ("txt", "html", "subject"):
            source = env.loader.get_source(env, f"{template}.{language}.{kind}")[0]
            used = meta.find_undeclared_variables(env.parse(source))
            if kind == "subject":
                assert used <= documented
            else:
                assert used == documented, (language, kind)


def test_optional_keys_may_be_omitted_or_none() -> None:
    required = {k: FULL_CONTEXT["lead_assigned"][k] for k in CONTEXT_KEYS["lead_assigned"].required}
    de = render("lead_assigned", "de", required, to=TO)
    en = render("lead_assigned", "en", {**required, "lead_company": None, "reason": None}, to=TO)

    assert "Ihnen wurde ein neuer Lead zugewiesen:\n\n  Lea Kramer\n\n" in de.text
    assert "A new lead has been assigned to you:\n\n  Lea Kramer\n\n" in en.text
    for body in (de.text, en.text, de.html or "", en.html or ""):
        assert "None" not in body
        assert "Grund" not in body
        assert "Reason" not in body
        assert "Kramer Maschinenbau" not in body


def test_optional_values_are_shown_when_given() -> None:
    rendered = render("lead_assigned", "de", FULL_CONTEXT["lead_assigned"], to=TO)

    assert "  Lea Kramer (Kramer Maschinenbau GmbH)\n\nGrund: Region Süd\n" in rendered.text


def test_task_without_lead() -> None:
    context = {k: v for k, v in FULL_CONTEXT["task_due"].items() if k != "lead_name"}

    rendered = render("task_due", "de", context, to=TO)

    assert "wir erinnern Sie an Ihre Aufgabe „Angebot nachfassen“.\n" in rendered.text
    assert "zum Lead" not in rendered.text


@pytest.mark.parametrize("minutes, expected", [(1, "1 Minute ab"), (2, "2 Minuten ab")])
def test_minutes_are_pluralized(minutes: int, expected: str) -> None:
    context = {**FULL_CONTEXT["sla_reminder"], "minutes_left": minutes}

    assert expected in render("sla_reminder", "de", context, to=TO).text


@pytest.mark.parametrize(
    "template, key",
    [(template, key) for template in TEMPLATES for key in CONTEXT_KEYS[template].required],
)
def test_missing_context_key_is_named(template: str, key: str) -> None:
    context = {k: v for k, v in FULL_CONTEXT[template].items() if k != key}

    with pytest.raises(ValueError, match=rf"missing context key.*\b{key}\b"):
        render(template, "de", context, to=TO)
    with pytest.raises(ValueError, match=rf"\b{key}\b"):
        render(template, "en", {**context, key: None}, to=TO)


def test_key_used_by_template_but_not_declared_is_still_a_value_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """StrictUndefined backs up CONTEXT_KEYS: the error still names the key."""
    monkeypatch.setitem(CONTEXT_KEYS, "invitation", ContextKeys(("recipient_name",)))
    context = {"recipient_name": "Max", "inviter_name": "Anna", "login_url": "https://x"}

    with pytest.raises(ValueError, match="organization_name"):
        render("invitation", "de", context, to=TO)


def test_unknown_template_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown email template"):
        render("newsletter", "de", {}, to=TO)


@pytest.mark.parametrize(
    "tag, expected",
    [
        ("de", "de"),
        ("DE", "de"),
        ("de-AT", "de"),
        ("de_CH", "de"),
        ("en-GB", "en"),
        ("fr", "en"),
        ("", "en"),
    ],
)
def test_language_resolution(tag: str, expected: str) -> None:
    assert resolve_language(tag) == expected
    rendered = render("invitation", tag, FULL_CONTEXT["invitation"], to=TO)
    assert rendered.headers["Content-Language"] == expected
    assert rendered.subject == EXPECTED[("invitation", expected)][0]


def test_html_is_escaped_but_text_and_subject_are_not() -> None:
    name = "<script>alert(1)</script> & Co"
    context = {**FULL_CONTEXT["lead_assigned"], "lead_name": name, "lead_url": 'https://x/"a'}

    rendered = render("lead_assigned", "en", context, to=TO)

    assert rendered.html is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in rendered.html
    assert "<script>" not in rendered.html
    assert 'href="https://x/&#34;a"' in rendered.html
    assert name in rendered.text
    assert rendered.subject == f"New lead assigned: {name}"


def test_line_breaks_in_values_do_not_break_the_subject() -> None:
    rendered = _email(context={"lead_name": "Lea\r\nBcc: victim@example.com"})

    assert rendered.subject == "Neuer Lead zugewiesen: Lea Bcc: victim@example.com"


@pytest.mark.parametrize("address", ["not-an-address", "lea@@example.com", "lea@localhost", ""])
def test_invalid_recipient_is_rejected(address: str) -> None:
    with pytest.raises(ValueError, match="invalid recipient address"):
        _email(to=address)
    with pytest.raises(ValueError, match="invalid recipient address"):
        RenderedEmail(to=address, subject="s", text="t")


@pytest.mark.parametrize(
    "headers",
    [{"Subject": "x"}, {"bcc": "a@example.com"}, {"Bad Name": "x"}, {"X-Ok": "a\nb"}],
)
def test_unsafe_headers_are_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="header"):
        RenderedEmail(to=TO, subject="s", text="t", headers=headers)


# --- building messages -------------------------------------------------------------------


def test_build_message_with_html_is_multipart_alternative() -> None:
    at = datetime(2026, 11, 24, 13, 5, tzinfo=UTC)
    with clock.frozen(at):
        message = build_message(_email(), SENDER)

    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Date"] == "Tue, 24 Nov 2026 13:05:00 +0000"
    assert message["Date"].datetime == at
    assert message["From"] == SENDER
    assert message["To"] == TO
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "de"
    assert message["Message-ID"].endswith("@leadflow.local>")


def test_build_message_without_html_is_plain_text() -> None:
    email = RenderedEmail(to=TO, subject="Grüße", text="Schöne Grüße\n")

    message = build_message(email, SENDER)

    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "Schöne Grüße\n"
    assert message.as_bytes().isascii()


def test_build_message_with_attachment_is_multipart_mixed() -> None:
    data = b"a,b\r\n1,2\r\n" + bytes(range(256))  # any bytes survive the round trip
    email = RenderedEmail(
        to=TO,
        subject="Bericht",
        text="Im Anhang\n",
        html="<p>Im Anhang</p>",
        attachments=(Attachment("bericht-ü.csv", "text/csv", data),),
    )

    message = build_message(email, SENDER)

    assert message.get_content_type() == "multipart/mixed"
    body = message.get_body(("plain",))
    assert body is not None and "Im Anhang" in body.get_content()
    [part] = list(message.iter_attachments())
    assert isinstance(part, EmailMessage)
    assert part.get_content_type() == "text/csv"
    assert part.get_filename() == "bericht-ü.csv"
    assert part.get_payload(decode=True) == data
    assert message.as_bytes().isascii()


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("", "text/csv"), ("a\nb.csv", "text/csv"), ("a.csv", "text"), ("a.csv", "text/csv; x=1")],
)
def test_unsafe_attachments_are_rejected(filename: str, content_type: str) -> None:
    with pytest.raises(ValueError, match="attachment"):
        Attachment(filename, content_type, b"x")


def test_message_id_is_derived_from_delivery_key() -> None:
    keyed = _email(headers={DELIVERY_KEY_HEADER: "lead_assigned:42:7"})
    other = _email(headers={DELIVERY_KEY_HEADER: "lead_assigned:42:8"})

    first = build_message(keyed, SENDER, message_id_domain="crm.example.com")["Message-ID"]
    again = build_message(keyed, SENDER, message_id_domain="crm.example.com")["Message-ID"]
    different = build_message(other, SENDER, message_id_domain="crm.example.com")["Message-ID"]
    unkeyed = [build_message(_email(), SENDER)["Message-ID"] for _ in range(2)]

    assert first == again
    assert first.startswith("<") and first.endswith("@crm.example.com>")
    assert "lead_assigned" not in first
    assert different != first
    assert unkeyed[0] != unkeyed[1]


def test_config_hides_password_and_checks_tls_modes() -> None:
    config = SmtpConfig(host="smtp.example.com", username=USERNAME, password=PASSWORD)

    assert PASSWORD not in repr(config)
    with pytest.raises(ValueError, match="mutually exclusive"):
        SmtpConfig(host="smtp.example.com", starttls=True, use_tls=True)
    with pytest.raises(ValueError, match="without a password"):
        SmtpConfig(host="smtp.example.com", username=USERNAME)


# --- sending -----------------------------------------------------------------------------


async def test_send_delivers_utf8_message(relay: Relay) -> None:
    key = "lead_assigned:42:7"
    email = _email(
        context={"lead_name": "Jürgen Größ", "recipient_name": "Max Müller"},
        headers={DELIVERY_KEY_HEADER: key},
    )

    message_id = await send(relay.config, email)

    [received] = relay.inbox.received
    assert received.mail_from == "noreply@example.com"
    assert received.rcpt_tos == [TO]
    # Everything on the wire is 7-bit: encoded words in headers, quoted-printable bodies.
    assert received.content.isascii()
    message = received.message
    assert message["Subject"] == "Neuer Lead zugewiesen: Jürgen Größ"
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Leadflow Büro", "noreply@example.com")
    assert message["To"] == TO
    assert message["Message-ID"] == message_id
    assert message_id.endswith("@example.com>")
    assert message[DELIVERY_KEY_HEADER] == key
    assert message["Content-Language"] == "de"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    # Lines arrive with SMTP's CRLF endings.
    assert text.get_content().replace("\r\n", "\n") == email.text
    assert "Hallo Max Müller," in text.get_content()
    assert "<strong>Jürgen Größ</strong>" in html.get_content()


async def test_send_delivers_attachments(relay: Relay) -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    email = RenderedEmail(
        to=TO,
        subject="Report",
        text="Attached.\n",
        attachments=(
            Attachment("report.pdf", "application/pdf", pdf),
            Attachment("report.csv", "text/csv", b"name\r\n'=1+1\r\n"),
        ),
    )

    await send(relay.config, email)

    [received] = relay.inbox.received
    assert received.content.isascii()
    parts = list(received.message.iter_attachments())
    assert [(p.get_filename(), p.get_content_type()) for p in parts] == [
        ("report.pdf", "application/pdf"),
        ("report.csv", "text/csv"),
    ]
    assert isinstance(parts[0], EmailMessage)
    assert parts[0].get_payload(decode=True) == pdf


async def test_resend_of_same_delivery_keeps_message_id(relay: Relay) -> None:
    first = _email(headers={DELIVERY_KEY_HEADER: "task_due:7:1"})
    second = _email(headers={DELIVERY_KEY_HEADER: "task_due:7:2"})

    ids = [
        await send(relay.config, first),
        await send(relay.config, first),
        await send(relay.config, second),
        await send(relay.config, _email()),
        await send(relay.config, _email()),
    ]

    assert [r.message["Message-ID"] for r in relay.inbox.received] == ids
    assert ids[0] == ids[1]
    assert len(set(ids)) == 4


async def test_recipient_rejected_with_550_is_permanent(relay: Relay) -> None:
    relay.inbox.rejected[TO] = "550 5.1.1 User unknown"

    with pytest.raises(EmailDeliveryError) as caught:
        await send(relay.config, _email())

    assert caught.value.permanent is True
    assert caught.value.code == 550
    assert "User unknown" in str(caught.value)
    assert relay.inbox.received == []


async def test_recipient_deferred_with_451_is_transient(relay: Relay) -> None:
    relay.inbox.rejected[TO] = "451 4.3.0 Try again later"

    with pytest.raises(EmailDeliveryError) as caught:
        await send(relay.config, _email())

    assert caught.value.permanent is False
    assert caught.value.code == 451


@pytest.mark.parametrize(
    "reply, permanent",
    [("554 5.6.0 Message content rejected", True), ("452 4.3.1 Insufficient storage", False)],
)
async def test_rejected_message_data(relay: Relay, reply: str, permanent: bool) -> None:
    relay.inbox.data_reply = reply

    with pytest.raises(EmailDeliveryError) as caught:
        await send(relay.config, _email())

    assert caught.value.permanent is permanent
    assert caught.value.code == int(reply[:3])
    assert reply[4:] in str(caught.value)


async def test_closed_port_is_transient() -> None:
    config = SmtpConfig(host="127.0.0.1", port=_free_port(), sender=SENDER, timeout=2)

    with pytest.raises(EmailDeliveryError) as caught:
        await send(config, _email())

    assert caught.value.permanent is False
    assert caught.value.code is None


async def test_timeout_is_transient(silent_port: int) -> None:
    config = SmtpConfig(host="127.0.0.1", port=silent_port, sender=SENDER, timeout=0.2)

    with pytest.raises(EmailDeliveryError) as caught:
        await send(config, _email())

    assert caught.value.permanent is False
    assert "tim" in str(caught.value).lower()


async def test_send_with_auth(auth_relay: Relay) -> None:
    config = SmtpConfig(
        host="127.0.0.1",
        port=auth_relay.config.port,
        username=USERNAME,
        password=PASSWORD,
        sender=SENDER,
    )

    message_id = await send(config, _email())

    [received] = auth_relay.inbox.received
    assert received.message["Message-ID"] == message_id


async def test_server_requiring_auth_rejects_anonymous_sender(auth_relay: Relay) -> None:
    with pytest.raises(EmailDeliveryError) as caught:
        await send(auth_relay.config, _email())

    assert caught.value.code == 530
    assert auth_relay.inbox.received == []


async def test_wrong_password_fails_without_leaking_it(
    auth_relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-" + PASSWORD
    config = SmtpConfig(
        host="127.0.0.1",
        port=auth_relay.config.port,
        username=USERNAME,
        password=wrong,
        sender=SENDER,
    )

    with (
        caplog.at_level(logging.DEBUG, logger="leadflow.notifications"),
        pytest.raises(EmailDeliveryError) as caught,
    ):
        await send(config, _email())

    assert caught.value.code == 535
    assert caught.value.permanent is True
    assert auth_relay.inbox.received == []
    assert wrong not in str(caught.value)
    assert caplog.records, "the failure should be logged"
    for record in caplog.records:
        assert all(wrong not in str(value) for value in vars(record).values())
