"""Events of the imports (see `kit.events`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from leadflow.kit.events import Event


@dataclass(frozen=True, kw_only=True)
class ImportCompleted(Event):
    """An import finished with status `completed` (`summary`: its counts)."""

    name: ClassVar[str] = "import.completed"
    organization_id: uuid.UUID
    batch_id: uuid.UUID
    filename: str | None
    summary: dict[str, Any]
    now: datetime
