"""Events of the call requests (see `kit.events`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from leadflow.kit.events import Event
from leadflow.models.call_request import CallRequest


@dataclass(frozen=True, kw_only=True)
class CallRequestUpdated(Event):
    """A call request moved on (a new status or a logged step); `call_request` is the row as
    it is now."""

    name: ClassVar[str] = "call_request.updated"
    organization_id: uuid.UUID
    call_request: CallRequest
    now: datetime
