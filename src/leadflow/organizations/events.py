"""Events the organisations service publishes (see `kit.events`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from leadflow.kit.events import Event


@dataclass(frozen=True, kw_only=True)
class TimezoneSet(Event):
    """An organisation was created with, or changed to, the business time zone `timezone`
    (its local days, e.g. for analytics, begin at that zone's midnight)."""

    name: ClassVar[str] = "organization.timezone_set"
    organization_id: uuid.UUID
    timezone: str
