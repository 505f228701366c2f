"""Timeline responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class ActorRef(BaseModel):
    """Who did it (null for the system or an integration)."""

    id: uuid.UUID
    name: str


class TimelineItem(BaseModel):
    """One entry of the lead timeline."""

    id: str
    kind: str
    occurred_at: datetime
    actor: ActorRef | None
    summary: str
    data: dict[str, Any]
