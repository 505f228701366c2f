"""The events an endpoint can subscribe to, and the permission that reading each one needs
(an endpoint receives every such event of the organisation)."""

from __future__ import annotations

from typing import Final, Literal

EventType = Literal[
    "lead.created",
    "lead.updated",
    "lead.status_changed",
    "lead.assigned",
    "lead.deleted",
    "lead.merged",
    "import.completed",
    "task.completed",
    "sla.breached",
    "call_request.updated",
]

EVENTS: Final[dict[str, str]] = {
    "lead.created": "leads:read",
    "lead.updated": "leads:read",
    "lead.status_changed": "leads:read",
    "lead.assigned": "leads:read",
    "lead.deleted": "leads:read",
    "lead.merged": "leads:read",
    "import.completed": "leads:read",
    "task.completed": "tasks:read",
    "sla.breached": "leads:read",
    "call_request.updated": "calls:read",
}

# Sent by `POST …/{id}/test` only; nobody subscribes to it.
TEST_EVENT: Final = "webhook.test"
