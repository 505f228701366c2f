"""The `smtp` integration: an organisation's own SMTP relay for its notification emails."""

from __future__ import annotations

import uuid
from email.utils import parseaddr
from typing import Any

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.integrations import registry
from leadflow.integrations.registry import CheckFailed
from leadflow.integrations.service import connected
from leadflow.kit.outbound import check_target
from leadflow.notifications.email import SmtpConfig


class SmtpCredentials(BaseModel):
    """Login of the relay (both or neither)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str | None = Field(default=None, min_length=1, max_length=320)
    password: str | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _pair(self) -> SmtpCredentials:
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together, or neither")
        return self


class SmtpSettings(BaseModel):
    """Where the relay is and how to speak to it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.\-:\[\]]+$")
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(min_length=3, max_length=320)
    starttls: bool = False
    use_tls: bool = False

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if "@" not in parseaddr(value)[1] or "\n" in value or "\r" in value:
            raise ValueError("not an email address (e.g. 'Sales <sales@example.com>')")
        return value

    @model_validator(mode="after")
    def _tls(self) -> SmtpSettings:
        if self.starttls and self.use_tls:
            raise ValueError("starttls and use_tls are mutually exclusive")
        return self


def _hosts(config: SmtpSettings) -> list[tuple[str, int]]:
    return [(config.host, config.port)]


async def _check(
    creds: SmtpCredentials, config: SmtpSettings, settings: Settings
) -> dict[str, Any]:
    """Connect, greet, log in when credentials are given, quit."""
    client = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        use_tls=config.use_tls,
        start_tls=config.starttls,
        timeout=settings.integrations_timeout_seconds,
    )
    try:
        await client.connect()
        if creds.username is not None and creds.password is not None:
            await client.login(creds.username, creds.password)
        await client.quit()
    except aiosmtplib.SMTPResponseException as exc:
        raise CheckFailed(f"the server answered {exc.code} {exc.message[:200]}") from None
    except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
        raise CheckFailed(f"could not connect ({type(exc).__name__})") from None
    finally:
        client.close()
    return {"logged_in": creds.username is not None}


def _process_default(settings: Settings) -> dict[str, Any] | None:
    if not settings.smtp_host:
        return None
    return {
        "host": settings.smtp_host,
        "port": settings.smtp_port,
        "sender": settings.smtp_from,
        "starttls": settings.smtp_starttls,
        "use_tls": settings.smtp_tls,
    }


registry.register(
    registry.Spec(
        type="smtp",
        name="SMTP",
        credentials=SmtpCredentials,
        config=SmtpSettings,
        check=_check,
        hosts=_hosts,
        process_default=_process_default,
    )
)


async def smtp_for(
    session: AsyncSession, settings: Settings, organization_id: uuid.UUID | None
) -> SmtpConfig | None:
    """The SMTP relay of the organisation's connected integration, or None (use the
    process-wide `LEADFLOW_SMTP_*`)."""
    if organization_id is None:
        return None
    found = await connected(session, settings, organization_id, "smtp")
    if found is None:
        return None
    c, cfg = found.credentials, found.config
    return SmtpConfig(
        host=cfg["host"],
        port=int(cfg["port"]),
        username=c.get("username"),
        password=c.get("password"),
        sender=cfg["sender"],
        starttls=bool(cfg.get("starttls")),
        use_tls=bool(cfg.get("use_tls")),
        timeout=settings.integrations_timeout_seconds,
    )


async def check_relay(settings: Settings, config: SmtpConfig) -> None:
    """Refuse an organisation's relay that now resolves to a private address (checked again
    before every delivery: the name may have changed since it was connected)."""
    await check_target(config.host, config.port, allow_private=settings.integrations_allow_private)
