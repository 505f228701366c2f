"""Subscribers: every domain event an endpoint can receive becomes deliveries, written with the
change in its transaction (see `service.record`). Lead events carry sets of leads; each lead
becomes one delivery per endpoint, ordered by the lead."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.calls.events import CallRequestUpdated
from leadflow.imports.events import ImportCompleted
from leadflow.kit.events import Event, subscribe
from leadflow.kit.records import RecordView
from leadflow.leads.events import (
    LeadsAssigned,
    LeadsCreated,
    LeadsDeleted,
    LeadsMerged,
    LeadsStatusChanged,
    LeadsUpdated,
)
from leadflow.sla.events import SlaBreached
from leadflow.tasks.events import TaskCompleted
from leadflow.webhooks.service import Item, record

# What a lead looks like in a payload (notes and internal columns left out: fetch the lead
# through the API for everything).
LEAD_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company",
    "status",
    "source",
    "channel",
    "tags",
    "custom",
    "assignee_id",
    "score",
    "needs_action",
    "next_action_at",
    "import_batch_id",
    "created_at",
    "updated_at",
    "version",
)
_ID_FIELDS = ("id", "assignee_id", "import_batch_id")
# Run after the other subscribers (SLA clocks, messages): their writes are in the lead then.
ORDER = 900


def lead_data(lead: Any) -> dict[str, Any]:
    """A lead (model instance or record view) as its payload shows it."""
    if isinstance(lead, RecordView):
        # An import chunk's leads: read the record itself (no attribute lookup per field).
        get = lead.record.get
        data = {f: get(f) for f in LEAD_FIELDS}
        # Their ids are asyncpg's UUID (`db.types.new_wire_id`), which orjson only encodes
        # through the fallback: as text here, one cheap call per id.
        for f in _ID_FIELDS:
            if data[f] is not None:
                data[f] = str(data[f])
        return data
    return {f: getattr(lead, f) for f in LEAD_FIELDS}


def _created(e: LeadsCreated) -> Iterator[Item]:
    """`lead.created`: the new lead."""
    for lead in e.leads:
        yield lead.id, {"lead": lead_data(lead), "source": e.source}


def _updated(e: LeadsUpdated) -> Iterator[Item]:
    """`lead.updated`: the changed fields, before and after."""
    for c in e.changes:
        yield (
            c.lead_id,
            {"lead_id": c.lead_id, "before": c.before, "after": c.after, "source": e.source},
        )


def _moved(e: LeadsStatusChanged) -> Iterator[Item]:
    """`lead.status_changed`: from, to, why, and the lead."""
    for m in e.moves:
        yield (
            m.lead.id,
            {
                "lead": lead_data(m.lead),
                "from_status": m.from_status,
                "to_status": m.to_status,
                "reason": m.reason,
            },
        )


def _assigned(e: LeadsAssigned) -> Iterator[Item]:
    """`lead.assigned`: from whom to whom, why, and the lead."""
    for a in e.assignments:
        yield (
            a.lead.id,
            {
                "lead": lead_data(a.lead),
                "assignment_id": a.assignment_id,
                "from_user_id": a.from_user_id,
                "to_user_id": a.to_user_id,
                "reason": a.reason,
            },
        )


def _deleted(e: LeadsDeleted) -> Iterator[Item]:
    """`lead.deleted`: which lead, and why (deleted, merged, import undone)."""
    for lead_id in e.lead_ids:
        yield lead_id, {"lead_id": lead_id, "reason": e.reason}


def _merged(e: LeadsMerged) -> Iterator[Item]:
    """`lead.merged`: the survivor and the leads merged into it (ordered by the survivor)."""
    yield e.survivor_id, {"survivor_id": e.survivor_id, "merged_ids": list(e.merged_ids)}


def _import_completed(e: ImportCompleted) -> Iterator[Item]:
    """`import.completed`: the batch and its counts."""
    yield None, {"import_id": e.batch_id, "filename": e.filename, **e.summary}


def _task_completed(e: TaskCompleted) -> Iterator[Item]:
    """`task.completed`: the task (ordered by its lead, if it has one)."""
    t = e.task
    task = {
        "id": t.id,
        "title": t.title,
        "lead_id": t.lead_id,
        "assignee_id": t.assignee_id,
        "priority": t.priority,
        "due_at": t.due_at,
        "completed_at": t.completed_at,
        "completed_by": t.completed_by,
    }
    yield t.lead_id, {"task": task}


def _sla_breached(e: SlaBreached) -> Iterator[Item]:
    """`sla.breached`: the lead, its deadline and its assignee."""
    lead = e.lead
    yield (
        lead.id,
        {
            "lead_id": lead.id,
            "assignee_id": lead.assignee_id,
            "sla_deadline": lead.sla_deadline,
            "sla_breached_at": lead.sla_breached_at or e.now,
        },
    )


def _call_request_updated(e: CallRequestUpdated) -> Iterator[Item]:
    """`call_request.updated`: the request's state (ordered by the request)."""
    c = e.call_request
    request = {
        "id": c.id,
        "request_id": c.request_id,
        "lead_id": c.lead_id,
        "status": c.status,
        "attempts": c.attempts,
        "scheduled_for": c.scheduled_for,
        "summary": c.summary,
        "updated_at": c.updated_at,
    }
    yield c.id, {"call_request": request}


Payloads = Callable[[Any], Iterable[Item]]


def _deliver(event_type: type[Event], payloads: Payloads) -> None:
    """Subscribe: every `event_type` (each carries `organization_id` and `now`) becomes the
    deliveries `payloads` describes, built only when an endpoint of the organisation is
    subscribed (see `service.record`)."""

    async def handler(session: AsyncSession, event: Any) -> None:
        await record(session, event.organization_id, event.name, event.now, lambda: payloads(event))

    subscribe(event_type, order=ORDER)(handler)


_PAYLOADS: tuple[tuple[type[Event], Payloads], ...] = (
    (LeadsCreated, _created),
    (LeadsUpdated, _updated),
    (LeadsStatusChanged, _moved),
    (LeadsAssigned, _assigned),
    (LeadsDeleted, _deleted),
    (LeadsMerged, _merged),
    (ImportCompleted, _import_completed),
    (TaskCompleted, _task_completed),
    (SlaBreached, _sla_breached),
    (CallRequestUpdated, _call_request_updated),
)
for _event_type, _payloads in _PAYLOADS:
    _deliver(_event_type, _payloads)
