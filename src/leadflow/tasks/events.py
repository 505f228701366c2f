"""Events of the tasks (see `kit.events`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from leadflow.kit.events import Event
from leadflow.models.task import Task


@dataclass(frozen=True, kw_only=True)
class TaskCompleted(Event):
    """A task was marked done."""

    name: ClassVar[str] = "task.completed"
    organization_id: uuid.UUID
    task: Task
    now: datetime
