"""Notification responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class NotificationRead(BaseModel):
    """An in-app notification."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    title: str
    body: str | None
    lead_id: uuid.UUID | None
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


class UnreadCount(BaseModel):
    """Number of unread notifications."""

    unread: int


class ReadAllOut(BaseModel):
    """How many notifications were marked read."""

    updated: int
