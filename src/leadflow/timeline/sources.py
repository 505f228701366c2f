"""The timeline kinds that come with leads, tasks and activities."""

from __future__ import annotations

from typing import Any

from leadflow.models.activity import Interaction, MessageEvent
from leadflow.models.lead_history import Consent, LeadAssignment, LeadNoteEdit, LeadStatusChange
from leadflow.models.task import Task
from leadflow.timeline.registry import model_source, register_source


def _short(text: str | None, n: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _interaction(r: Interaction) -> tuple[str, dict[str, Any]]:
    label = f"{r.direction} {r.type}" if r.type != "note" else "note"
    subject = f": {r.subject}" if r.subject else ""
    return f"{label.capitalize()}{subject}", {
        "interaction_id": str(r.id),
        "type": r.type,
        "direction": r.direction,
        "subject": r.subject,
        "body": r.body,
        "outcome": r.outcome,
        "duration_seconds": r.duration_seconds,
    }


def _status(r: LeadStatusChange) -> tuple[str, dict[str, Any]]:
    text = (
        f"Status {r.from_status} → {r.to_status}" if r.from_status else f"Created in {r.to_status}"
    )
    return text, {"from": r.from_status, "to": r.to_status, "reason": r.reason}


def _assignment(r: LeadAssignment) -> tuple[str, dict[str, Any]]:
    text = "Assigned" if r.to_user_id else "Unassigned"
    return text, {
        "from_user_id": str(r.from_user_id) if r.from_user_id else None,
        "to_user_id": str(r.to_user_id) if r.to_user_id else None,
        "reason": r.reason,
        "rule_id": str(r.rule_id) if r.rule_id else None,
    }


def _consent(r: Consent) -> tuple[str, dict[str, Any]]:
    verb = "granted" if r.granted else "revoked"
    return f"Consent for {r.channel} {verb}", {
        "channel": r.channel,
        "granted": r.granted,
        "source": r.source,
        "text": r.text,
    }


def _note(r: LeadNoteEdit) -> tuple[str, dict[str, Any]]:
    return "Notes edited", {"before": r.before, "after": r.after}


def _event(r: MessageEvent) -> tuple[str, dict[str, Any]]:
    return f"{r.channel} message {r.type}", {
        "type": r.type,
        "channel": r.channel,
        "message_id": r.message_id,
        "data": r.data,
    }


def _task_created(r: Task) -> tuple[str, dict[str, Any]]:
    return f"Task created: {_short(r.title)}", {
        "task_id": str(r.id),
        "title": r.title,
        "due_at": r.due_at.isoformat() if r.due_at else None,
        "priority": r.priority,
        "status": r.status,
    }


def _task_completed(r: Task) -> tuple[str, dict[str, Any]]:
    return f"Task completed: {_short(r.title)}", {"task_id": str(r.id), "title": r.title}


def register_builtin_sources() -> None:
    """Register the kinds of the core modules."""
    register_source(model_source("interaction", Interaction, Interaction.occurred_at, _interaction))
    register_source(
        model_source("status_change", LeadStatusChange, LeadStatusChange.created_at, _status)
    )
    register_source(
        model_source("assignment", LeadAssignment, LeadAssignment.created_at, _assignment)
    )
    register_source(model_source("consent", Consent, Consent.created_at, _consent))
    register_source(model_source("note_edit", LeadNoteEdit, LeadNoteEdit.created_at, _note))
    register_source(model_source("message_event", MessageEvent, MessageEvent.occurred_at, _event))
    register_source(
        model_source("task_created", Task, Task.created_at, _task_created, actor_col="created_by")
    )
    register_source(
        model_source(
            "task_completed",
            Task,
            Task.completed_at,
            _task_completed,
            where=[Task.completed_at.is_not(None)],
            actor_col="completed_by",
        )
    )


register_builtin_sources()
