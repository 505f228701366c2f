"""Tables whose rows belong to a lead. Merging moves them; later modules register theirs."""

from __future__ import annotations

from typing import Any

from leadflow.models.activity import Interaction, MessageEvent
from leadflow.models.lead_history import Consent, LeadAssignment, LeadNoteEdit, LeadStatusChange
from leadflow.models.task import Task

LEAD_CHILD_MODELS: list[Any] = [
    LeadStatusChange,
    LeadAssignment,
    LeadNoteEdit,
    Consent,
    Interaction,
    MessageEvent,
    Task,
]


def register_lead_child(model: Any) -> None:
    """Declare a model with a `lead_id` column whose rows follow a lead when it is merged."""
    if model not in LEAD_CHILD_MODELS:
        LEAD_CHILD_MODELS.append(model)
