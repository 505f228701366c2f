"""In/out models of the webhook endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadflow.webhooks.catalogue import EventType
from leadflow.webhooks.signing import check_secret


def _check_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http(s) URL such as https://example.com/hooks/leadflow")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not accepted; the signature authenticates")
    if parts.fragment:
        raise ValueError("a URL without a #fragment")
    if port == 0:
        raise ValueError("port 0 is not a port")
    return value


def _unique(events: list[str]) -> list[str]:
    if len(set(events)) != len(events):
        raise ValueError("each event once")
    return events


class EndpointCreate(BaseModel):
    """A new endpoint: the events it receives, where, and (optionally) its signing secret
    (`whsec_` + base64; one is generated when left out)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    events: list[EventType] = Field(min_length=1, max_length=10)
    endpoint_url: str = Field(min_length=8, max_length=2000)
    secret: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=500)

    @field_validator("endpoint_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        return _unique(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else check_secret(value)


class EndpointUpdate(BaseModel):
    """Changes of an endpoint; `status: active` re-enables a disabled one (its queued
    deliveries go out again), `disabled` pauses it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    events: list[EventType] | None = Field(default=None, min_length=1, max_length=10)
    endpoint_url: str | None = Field(default=None, min_length=8, max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    status: Literal["active", "disabled"] | None = None

    @field_validator("endpoint_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("endpoint_url cannot be null")
        return _check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            raise ValueError("events cannot be null")
        return _unique(value)

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("status cannot be null")
        return value


class RotateIn(BaseModel):
    """Optionally the new secret; one is generated when left out."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    secret: str | None = Field(default=None, max_length=200)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else check_secret(value)


class EndpointRead(BaseModel):
    """An endpoint (never its secret)."""

    id: uuid.UUID
    endpoint_url: str
    description: str | None
    events: list[str]
    status: Literal["active", "disabled"]
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    consecutive_failures: int
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointRead):
    """The new endpoint with its secret, shown this once."""

    secret: str


class SecretRotated(BaseModel):
    """The new secret (shown this once); the previous one keeps signing until
    `previous_secret_expires_at`, so receivers can switch without losing a message (null:
    the previous one could not be decrypted, so only the new one signs)."""

    id: uuid.UUID
    secret: str
    previous_secret_expires_at: datetime | None


class AttemptRead(BaseModel):
    """One HTTP attempt."""

    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    success: bool
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None


class DeliveryRead(BaseModel):
    """One event owed to an endpoint, with its attempts (oldest first). `webhook_id` is the
    `webhook-id` header every attempt carried; `status`: pending, retry, delivered, failed."""

    id: uuid.UUID
    endpoint_id: uuid.UUID
    webhook_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    data: Any
    attempt_log: list[AttemptRead]


class TestResult(BaseModel):
    """What the endpoint answered to the test event."""

    success: bool
    delivery: DeliveryRead
