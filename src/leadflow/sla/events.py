"""Events of the SLA clocks (see `kit.events`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from leadflow.kit.events import Event
from leadflow.models.lead import Lead


@dataclass(frozen=True, kw_only=True)
class SlaBreached(Event):
    """A lead's response deadline passed without a response (once per lead and deadline)."""

    name: ClassVar[str] = "sla.breached"
    organization_id: uuid.UUID
    lead: Lead
    now: datetime
