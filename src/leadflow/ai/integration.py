"""The `openai` integration: an organisation's own OpenAI account (or a compatible API at its
own base URL) for its AI calls, instead of the process-wide `LEADFLOW_AI_PROVIDER` setting."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai.openai_provider import OpenAIProvider
from leadflow.ai.runtime import AiRuntime
from leadflow.config import Settings
from leadflow.integrations import registry
from leadflow.integrations.registry import CheckFailed
from leadflow.integrations.service import connected
from leadflow.kit.outbound import TargetRefused, guarded_client

DEFAULT_BASE = "https://api.openai.com/v1"


class OpenAICredentials(BaseModel):
    """The API key."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    api_key: str = Field(min_length=1, max_length=500)


class OpenAISettings(BaseModel):
    """The model to use and, for a compatible API, its base URL."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    model: str = Field(default="gpt-4o-mini", min_length=1, max_length=100)
    base_url: str = Field(default="", max_length=500)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
            raise ValueError("an http(s) URL without credentials, e.g. https://api.example.com/v1")
        return value.rstrip("/")


def _hosts(config: OpenAISettings) -> list[tuple[str, int]]:
    parts = urlsplit(config.base_url or DEFAULT_BASE)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return [(parts.hostname or "", port)]


async def _check(
    creds: OpenAICredentials, config: OpenAISettings, settings: Settings
) -> dict[str, Any]:
    """List the models the key may use; the configured model must be among them."""
    client = AsyncOpenAI(
        api_key=creds.api_key,
        base_url=config.base_url or None,
        timeout=settings.integrations_timeout_seconds,
        max_retries=0,
        # The SDK takes httpx clients as well as its own (typed for its own only).
        http_client=guarded_client(  # type: ignore[arg-type]
            allow_private=settings.integrations_allow_private,
            timeout=settings.integrations_timeout_seconds,
        ),
    )
    try:
        page = await client.models.list()
        ids = [m.id for m in page.data]
    except openai.APIStatusError as exc:
        raise CheckFailed(f"the API answered HTTP {exc.status_code}") from None
    except openai.APIConnectionError as exc:
        if isinstance(exc.__cause__, TargetRefused):
            raise exc.__cause__ from None
        raise CheckFailed(f"could not connect ({type(exc.__cause__ or exc).__name__})") from None
    finally:
        await client.close()
    if config.model not in ids:
        raise CheckFailed(f"model {config.model!r} is not available to this key")
    return {"models": len(ids), "model": config.model}


def _process_default(settings: Settings) -> dict[str, Any] | None:
    if settings.ai_provider != "openai":
        return None
    return {"model": settings.openai_model, "base_url": settings.openai_base_url}


registry.register(
    registry.Spec(
        type="openai",
        name="OpenAI",
        credentials=OpenAICredentials,
        config=OpenAISettings,
        check=_check,
        hosts=_hosts,
        process_default=_process_default,
    )
)


async def runtime_for(
    session: AsyncSession, settings: Settings, rt: AiRuntime, organization_id: uuid.UUID
) -> AiRuntime:
    """`rt` with the organisation's own OpenAI account as its provider when it connected one
    (the caller closes that provider after the call); else `rt` itself. The limits and the
    local fallback stay the app's."""
    found = await connected(session, settings, organization_id, "openai")
    if found is None:
        return rt
    provider = OpenAIProvider(
        api_key=found.credentials["api_key"],
        model=found.config.get("model") or settings.openai_model,
        base_url=found.config.get("base_url") or "",
        timeout=settings.ai_timeout_seconds,
        max_retries=settings.ai_max_retries,
        http_client=guarded_client(
            allow_private=settings.integrations_allow_private,
            timeout=settings.ai_timeout_seconds,
        ),
    )
    return dataclasses.replace(rt, provider=provider)
