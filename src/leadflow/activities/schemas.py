"""Interaction and message-event requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class InteractionType(StrEnum):
    """Kinds of interaction."""

    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    NOTE = "note"
    SMS = "sms"
    WHATSAPP = "whatsapp"


class Direction(StrEnum):
    """Who reached out."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class EventType(StrEnum):
    """Message delivery events."""

    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    REPLIED = "replied"
    UNSUBSCRIBED = "unsubscribed"


class EventChannel(StrEnum):
    """Channel a message went through."""

    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    PHONE = "phone"


def _aware(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        raise ValueError("must include a timezone (e.g. 2026-01-31T09:00:00Z)")
    return v


class InteractionCreate(BaseModel):
    """Log an interaction (`occurred_at` defaults to now)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: InteractionType
    direction: Direction = Direction.OUTBOUND
    subject: str | None = Field(default=None, max_length=300)
    body: str | None = Field(default=None, max_length=20_000)
    outcome: str | None = Field(default=None, max_length=200)
    occurred_at: datetime | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=86_400)

    @field_validator("occurred_at")
    @classmethod
    def _occurred(cls, v: datetime | None) -> datetime | None:
        return _aware(v)


class InteractionRead(BaseModel):
    """A logged interaction."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    lead_id: uuid.UUID
    type: str
    direction: str
    subject: str | None
    body: str | None
    outcome: str | None
    occurred_at: datetime
    duration_seconds: int | None
    actor_user_id: uuid.UUID | None
    created_at: datetime


class EventCreate(BaseModel):
    """Record a delivery event from an integration."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: EventType
    channel: EventChannel = EventChannel.EMAIL
    message_id: str | None = Field(default=None, max_length=200)
    occurred_at: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _occurred(cls, v: datetime | None) -> datetime | None:
        return _aware(v)


class EventRead(BaseModel):
    """A delivery event."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    lead_id: uuid.UUID
    type: str
    channel: str
    message_id: str | None
    data: dict[str, Any]
    occurred_at: datetime
    created_at: datetime
