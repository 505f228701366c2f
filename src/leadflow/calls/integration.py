"""The `twilio` integration: an organisation's own Twilio account places its calls and signs
its status callbacks, instead of the process-wide `LEADFLOW_TWILIO_*` account."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.calls.twilio import TwilioProvider
from leadflow.config import Settings
from leadflow.integrations import registry
from leadflow.integrations.registry import CheckFailed
from leadflow.integrations.service import connected
from leadflow.kit.normalize import is_valid_phone
from leadflow.kit.outbound import guarded_transport


class TwilioCredentials(BaseModel):
    """Account SID and auth token."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str = Field(min_length=8, max_length=200)


class TwilioSettings(BaseModel):
    """The number calls come from and (for tests or a regional edge) the API base."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    from_number: str = Field(min_length=3, max_length=32)
    api_base: str = Field(default="https://api.twilio.com", max_length=500)

    @field_validator("from_number")
    @classmethod
    def _number(cls, value: str) -> str:
        if not value.startswith("+") or not is_valid_phone(value):
            raise ValueError("an E.164 phone number such as +4930123456")
        return value

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
            raise ValueError("an http(s) URL without credentials")
        return value.rstrip("/")


def _hosts(config: TwilioSettings) -> list[tuple[str, int]]:
    parts = urlsplit(config.api_base)
    return [(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))]


async def _check(
    creds: TwilioCredentials, config: TwilioSettings, settings: Settings
) -> dict[str, Any]:
    """Fetch the account (`GET /2010-04-01/Accounts/{sid}.json`)."""
    url = f"{config.api_base}/2010-04-01/Accounts/{creds.account_sid}.json"
    try:
        async with httpx.AsyncClient(
            transport=guarded_transport(allow_private=settings.integrations_allow_private),
            timeout=settings.integrations_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            response = await client.get(url, auth=(creds.account_sid, creds.auth_token))
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        raise CheckFailed(f"could not connect ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise CheckFailed(f"Twilio answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise CheckFailed("Twilio's answer is not JSON") from None
    status = body.get("status") if isinstance(body, dict) else None
    if status not in (None, "active"):
        raise CheckFailed(f"the account is {status}")
    return {"account_status": status or "active"}


def _process_default(settings: Settings) -> dict[str, Any] | None:
    if settings.voice_provider != "twilio":
        return None
    return {"from_number": settings.twilio_from_number, "api_base": settings.twilio_api_base}


registry.register(
    registry.Spec(
        type="twilio",
        name="Twilio",
        credentials=TwilioCredentials,
        config=TwilioSettings,
        check=_check,
        hosts=_hosts,
        process_default=_process_default,
    )
)


async def provider_for(
    session: AsyncSession, settings: Settings, organization_id: uuid.UUID
) -> TwilioProvider | None:
    """A provider on the organisation's own Twilio account, or None (use the settings)."""
    found = await connected(session, settings, organization_id, "twilio")
    if found is None:
        return None
    return TwilioProvider(
        account_sid=found.credentials["account_sid"],
        auth_token=found.credentials["auth_token"],
        from_number=found.config["from_number"],
        api_base=found.config.get("api_base") or settings.twilio_api_base,
        transport=partial(guarded_transport, allow_private=settings.integrations_allow_private),
    )


async def auth_token_for(
    session: AsyncSession, settings: Settings, organization_id: uuid.UUID
) -> str:
    """The token that signs the organisation's status callbacks."""
    found = await connected(session, settings, organization_id, "twilio")
    return str(found.credentials["auth_token"]) if found else settings.twilio_auth_token
