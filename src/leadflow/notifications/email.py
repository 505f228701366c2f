"""Localized notification emails: Jinja2 rendering and SMTP delivery.

Templates live in ``templates/`` as ``<name>.<language>.subject``, ``<name>.<language>.txt``
and (optional) ``<name>.<language>.html``; files starting with ``_`` are shared partials.
Languages are ``de`` and ``en``. A language tag is reduced to its primary subtag
(``de-AT`` -> ``de``); any unsupported language falls back to ``en``. Every template ships
in both languages, so no further fallback is needed.

Context keys per template (optional keys may be omitted or None):

- ``lead_assigned``: recipient_name, lead_name, lead_url;
  optional lead_company, assigned_by, reason
- ``sla_reminder``: recipient_name, lead_name, deadline_local (preformatted string),
  minutes_left (int), lead_url
- ``sla_breached``: recipient_name, lead_name, deadline_local, assignee_name, lead_url
- ``task_due``: recipient_name, task_title, due_local (preformatted string), task_url;
  optional lead_name
- ``invitation``: recipient_name, organization_name, inviter_name, login_url;
  optional expires_local (preformatted string: until when the link works)
- ``report_ready``: recipient_name, report_name, row_count (int), download_url,
  expires_local (preformatted string); optional attached (bool: the file is attached)

Values are formatted by the caller (dates in the recipient's time zone and locale);
templates only place them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Final, NamedTuple

import aiosmtplib
from email_validator import EmailNotValidError, validate_email
from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    UndefinedError,
    select_autoescape,
)

from leadflow.kit.clock import utcnow

__all__ = [
    "CONTEXT_KEYS",
    "DELIVERY_KEY_HEADER",
    "FALLBACK_LANGUAGE",
    "LANGUAGES",
    "TEMPLATES",
    "Attachment",
    "ContextKeys",
    "EmailDeliveryError",
    "RenderedEmail",
    "SmtpConfig",
    "build_message",
    "render",
    "resolve_language",
    "send",
]

log = logging.getLogger("leadflow.notifications")

TEMPLATES: Final = (
    "lead_assigned",
    "sla_reminder",
    "sla_breached",
    "task_due",
    "invitation",
    "report_ready",
)
LANGUAGES: Final = ("de", "en")
FALLBACK_LANGUAGE: Final = "en"
DELIVERY_KEY_HEADER: Final = "X-Leadflow-Delivery-Key"


class ContextKeys(NamedTuple):
    """Context keys a template needs (`required`) and understands (`optional`)."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


CONTEXT_KEYS: Final[Mapping[str, ContextKeys]] = {
    "lead_assigned": ContextKeys(
        ("recipient_name", "lead_name", "lead_url"), ("lead_company", "assigned_by", "reason")
    ),
    "sla_reminder": ContextKeys(
        ("recipient_name", "lead_name", "deadline_local", "minutes_left", "lead_url")
    ),
    "sla_breached": ContextKeys(
        ("recipient_name", "lead_name", "deadline_local", "assignee_name", "lead_url")
    ),
    "task_due": ContextKeys(
        ("recipient_name", "task_title", "due_local", "task_url"), ("lead_name",)
    ),
    "invitation": ContextKeys(
        ("recipient_name", "organization_name", "inviter_name", "login_url"), ("expires_local",)
    ),
    "report_ready": ContextKeys(
        ("recipient_name", "report_name", "row_count", "download_url", "expires_local"),
        ("attached",),
    ),
}

# Headers build_message() writes itself; letting callers set them would produce duplicates
# or a broken MIME structure.
_RESERVED_HEADERS: Final = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)
# RFC 5322 field name: printable ASCII except ":" and space.
_HEADER_NAME: Final = re.compile(r"[!-9;-~]+")
# type/subtype as RFC 2045 tokens, without parameters.
_CONTENT_TYPE: Final = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")

_env = Environment(
    loader=PackageLoader("leadflow.notifications", "templates"),
    # Escaping only makes sense for HTML; subjects and plain text must keep "<" and "&".
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    auto_reload=False,
)


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the SMTP relay. `starttls` upgrades a plain connection (port 587);
    `use_tls` connects with implicit TLS (port 465)."""

    host: str
    port: int = 587
    username: str | None = None
    # repr=False keeps the password out of logs and tracebacks that print the config.
    password: str | None = field(default=None, repr=False)
    sender: str = "Leadflow <noreply@localhost>"
    starttls: bool = False
    use_tls: bool = False
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("SMTP host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"invalid SMTP port: {self.port}")
        if self.starttls and self.use_tls:
            raise ValueError("starttls and use_tls are mutually exclusive")
        if self.username is not None and self.password is None:
            raise ValueError("SMTP username given without a password")
        if self.timeout <= 0:
            raise ValueError("SMTP timeout must be positive")
        if "@" not in parseaddr(self.sender)[1]:
            raise ValueError(f"invalid sender address: {self.sender!r}")


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email. Raises ValueError for an unsafe name or content type."""

    filename: str
    content_type: str
    # repr=False: a file of megabytes has no place in a log line.
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.filename.strip() or _has_line_break(self.filename):
            raise ValueError("attachment filename must be a non-empty single line")
        if not _CONTENT_TYPE.fullmatch(self.content_type):
            raise ValueError(f"invalid attachment content type: {self.content_type!r}")


@dataclass(frozen=True)
class RenderedEmail:
    """A ready-to-send email; `headers` are extra headers such as the delivery key.

    Raises ValueError for an invalid recipient address or unsafe header/subject values.
    """

    to: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        _validated_address(self.to)
        if not self.subject.strip() or _has_line_break(self.subject):
            raise ValueError("subject must be a non-empty single line")
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name) or name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header not allowed: {name!r}")
            if _has_line_break(value):
                raise ValueError(f"header {name!r} must be a single line")


class EmailDeliveryError(Exception):
    """Sending failed. `permanent` means retrying the same message cannot succeed (a 5xx
    reply, e.g. recipient unknown or bad credentials); otherwise retry later (4xx reply,
    connection error, timeout). `code` is the SMTP reply code, if there was one."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


def resolve_language(language: str) -> str:
    """The supported language to render for a tag like ``de``, ``de-AT`` or ``fr``."""
    primary = language.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else FALLBACK_LANGUAGE


def render(
    template: str,
    language: str,
    context: Mapping[str, Any],
    *,
    to: str,
    headers: Mapping[str, str] | None = None,
) -> RenderedEmail:
    """Render `template` in `language` (see module docstring for keys and fallback).

    `headers` are added to the email (e.g. the delivery key). The resolved language is
    set as ``Content-Language``. Raises ValueError for an unknown template, a missing
    required context key (named in the message) or an invalid recipient.
    """
    if template not in CONTEXT_KEYS:
        raise ValueError(f"unknown email template: {template!r}")
    # Check before rendering so the error lists every missing key at once, and treat None
    # as missing: StrictUndefined would happily print "None" into the email.
    missing = [key for key in CONTEXT_KEYS[template].required if context.get(key) is None]
    if missing:
        raise ValueError(f"missing context key(s) for {template!r}: {', '.join(missing)}")
    lang = resolve_language(language)
    values = dict(context)
    try:
        subject = _env.get_template(f"{template}.{lang}.subject").render(values)
        text = _env.get_template(f"{template}.{lang}.txt").render(values)
        try:
            html: str | None = _env.get_template(f"{template}.{lang}.html").render(values)
        except TemplateNotFound:
            html = None
    except UndefinedError as exc:
        # Safety net for a template using a key that CONTEXT_KEYS does not list.
        raise ValueError(f"missing context key for {template!r}: {exc.message}") from exc
    return RenderedEmail(
        to=to,
        # Values like a lead name may contain line breaks; a header must be one line.
        subject=" ".join(subject.split()),
        text=text,
        html=html,
        headers={"Content-Language": lang, **(headers or {})},
    )


def build_message(
    email: RenderedEmail, sender: str, *, message_id_domain: str = "leadflow.local"
) -> EmailMessage:
    """MIME message for `email`: text/plain, or multipart/alternative with HTML; with
    attachments, multipart/mixed around that body.

    With a delivery-key header the Message-ID is derived from the key, so a resend of the
    same delivery carries the same Message-ID and receivers can drop the duplicate.
    """
    if not message_id_domain or re.search(r"[\s<>@]", message_id_domain):
        raise ValueError(f"invalid Message-ID domain: {message_id_domain!r}")
    message = EmailMessage(policy=policy.default)
    message["From"] = sender
    message["To"] = _validated_address(email.to)
    message["Subject"] = email.subject  # the policy RFC 2047-encodes non-ASCII text
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = _message_id(email, message_id_domain)
    # Quoted-printable keeps the body 7-bit clean, so relays without 8BITMIME get it intact.
    message.set_content(email.text, cte="quoted-printable")
    if email.html is not None:
        message.add_alternative(email.html, subtype="html", cte="quoted-printable")
    for attachment in email.attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    # Extra headers go on last: set_content() drops and add_alternative() moves every
    # Content-* header (e.g. Content-Language) that is already on the message.
    names = {name.lower() for name in email.headers}
    if "auto-submitted" not in names:
        # RFC 3834: tells vacation responders and ticket systems not to auto-reply.
        message["Auto-Submitted"] = "auto-generated"
    for name, value in email.headers.items():
        message[name] = value
    return message


async def send(config: SmtpConfig, email: RenderedEmail) -> str:
    """Deliver `email` through the SMTP relay in `config`; return its Message-ID.

    The Message-ID domain is the sender's domain. Raises EmailDeliveryError on failure.
    """
    sender_domain = parseaddr(config.sender)[1].rpartition("@")[2]
    message = build_message(email, config.sender, message_id_domain=sender_domain)
    message_id = str(message["Message-ID"])
    try:
        await aiosmtplib.send(
            message,
            recipients=[_validated_address(email.to)],
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.use_tls,
            # False, not None: None would let aiosmtplib upgrade opportunistically, and the
            # config should mean exactly what it says.
            start_tls=config.starttls,
            timeout=config.timeout,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        error = _delivery_error(exc)
        log.warning(
            "email delivery failed",
            extra={
                "message_id": message_id,
                "smtp_host": config.host,
                "smtp_code": error.code,
                "permanent": error.permanent,
                "error": str(error),
            },
        )
        raise error from exc
    log.info("email sent", extra={"message_id": message_id, "smtp_host": config.host})
    return message_id


def _delivery_error(exc: BaseException) -> EmailDeliveryError:
    """Classify an aiosmtplib/socket failure as permanent (5xx) or transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        # With a single recipient this is simply that recipient's reply.
        return EmailDeliveryError(
            f"recipient refused: {detail}",
            permanent=all(500 <= code < 600 for code in codes),
            code=codes[0] if codes else None,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return EmailDeliveryError(
            f"SMTP error {exc.code}: {exc.message}",
            permanent=500 <= exc.code < 600,
            code=exc.code,
        )
    # Connection refused/lost, timeouts, TLS failures, missing server features
    # (SMTPNotSupported): the message itself is fine, so a later retry may succeed.
    return EmailDeliveryError(f"SMTP delivery failed: {exc}", permanent=False)


def _validated_address(address: str) -> str:
    """The address to use on the wire; ValueError if its syntax is invalid."""
    try:
        info = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"invalid recipient address {address!r}: {exc}") from None
    # Prefer the ASCII (IDNA) form so relays without SMTPUTF8 accept internationalized domains.
    return info.ascii_email or info.normalized


def _message_id(email: RenderedEmail, domain: str) -> str:
    key = next(
        (v for k, v in email.headers.items() if k.lower() == DELIVERY_KEY_HEADER.lower()), None
    )
    if key is None:
        return make_msgid(domain=domain)
    # Hashing keeps arbitrary key characters out of the msg-id syntax and hides internal ids.
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def _has_line_break(value: str) -> bool:
    return "\r" in value or "\n" in value
