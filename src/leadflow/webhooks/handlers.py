"""Subscribers: every domain event an endpoint can receive becomes deliveries, written with the
change in its transaction (see `service.record`). Lead events carry sets of leads; each lead
becomes one delivery per endpoint, ordered by the lead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.calls.events import CallRequestUpdated
from leadflow.imports.events import ImportCompleted
from leadflow.kit.events import subscribe
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
# Run after the other subscribers (SLA clocks, messages): their writes are in the lead then.
ORDER = 900


def lead_data(lead: Any) -> dict[str, Any]:
    """A lead (model instance or record view) as its payload shows it."""
    if isinstance(lead, RecordView):
        # An import chunk's leads: read the record itself (no attribute lookup per field).
        get = lead.record.get
        return {f: get(f) for f in LEAD_FIELDS}
    return {f: getattr(lead, f) for f in LEAD_FIELDS}


@subscribe(LeadsCreated, order=ORDER)
async def leads_created(session: AsyncSession, event: LeadsCreated) -> None:
    """`lead.created`: the new lead."""

    def items() -> Iterator[Item]:
        for lead in event.leads:
            yield lead.id, {"lead": lead_data(lead), "source": event.source}

    await record(session, event.organization_id, event.name, event.now, items)


@subscribe(LeadsUpdated, order=ORDER)
async def leads_updated(session: AsyncSession, event: LeadsUpdated) -> None:
    """`lead.updated`: the changed fields, before and after."""

    def items() -> Iterator[Item]:
        for c in event.changes:
            yield (
                c.lead_id,
                {
                    "lead_id": c.lead_id,
                    "before": c.before,
                    "after": c.after,
                    "source": event.source,
                },
            )

    await record(session, event.organization_id, event.name, event.now, items)


@subscribe(LeadsStatusChanged, order=ORDER)
async def leads_moved(session: AsyncSession, event: LeadsStatusChanged) -> None:
    """`lead.status_changed`: from, to, why, and the lead."""

    def items() -> Iterator[Item]:
        for m in event.moves:
            yield (
                m.lead.id,
                {
                    "lead": lead_data(m.lead),
                    "from_status": m.from_status,
                    "to_status": m.to_status,
                    "reason": m.reason,
                },
            )

    await record(session, event.organization_id, event.name, event.now, items)


@subscribe(LeadsAssigned, order=ORDER)
async def leads_assigned(session: AsyncSession, event: LeadsAssigned) -> None:
    """`lead.assigned`: from whom to whom, why, and the lead."""

    def items() -> Iterator[Item]:
        for a in event.assignments:
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

    await record(session, event.organization_id, event.name, event.now, items)


@subscribe(LeadsDeleted, order=ORDER)
async def leads_deleted(session: AsyncSession, event: LeadsDeleted) -> None:
    """`lead.deleted`: which lead, and why (deleted, merged, import undone)."""

    def items() -> Iterator[Item]:
        for lead_id in event.lead_ids:
            yield lead_id, {"lead_id": lead_id, "reason": event.reason}

    await record(session, event.organization_id, event.name, event.now, items)


@subscribe(LeadsMerged, order=ORDER)
async def leads_merged(session: AsyncSession, event: LeadsMerged) -> None:
    """`lead.merged`: the survivor and the leads merged into it (ordered by the survivor)."""

    def items() -> Iterator[Item]:
        yield (
            event.survivor_id,
            {"survivor_id": event.survivor_id, "merged_ids": list(event.merged_ids)},
        )

    await record(session, event.organization_id, event.name, event.now, items)


@subscribe(ImportCompleted, order=ORDER)
async def import_completed(session: AsyncSession, event: ImportCompleted) -> None:
    """`import.completed`: the batch and its counts."""

    def items() -> Iterator[Item]:
        yield None, {"import_id": event.batch_id, "filename": event.filename, **event.summary}

    await record(session, event.organization_id, event.name, event.now, items)


@subscribe(TaskCompleted, order=ORDER)
async def task_completed(session: AsyncSession, event: TaskCompleted) -> None:
    """`task.completed`: the task (ordered by its lead, if it has one)."""
    t = event.task

    def items() -> Iterator[Item]:
        yield (
            t.lead_id,
            {
                "task": {
                    "id": t.id,
                    "title": t.title,
                    "lead_id": t.lead_id,
                    "assignee_id": t.assignee_id,
                    "priority": t.priority,
                    "due_at": t.due_at,
                    "completed_at": t.completed_at,
                    "completed_by": t.completed_by,
                }
            },
        )

    await record(session, event.organization_id, event.name, event.now, items)


@subscribe(SlaBreached, order=ORDER)
async def sla_breached(session: AsyncSession, event: SlaBreached) -> None:
    """`sla.breached`: the lead, its deadline and its assignee."""
    lead = event.lead

    def items() -> Iterator[Item]:
        yield (
            lead.id,
            {
                "lead_id": lead.id,
                "assignee_id": lead.assignee_id,
                "sla_deadline": lead.sla_deadline,
                "sla_breached_at": lead.sla_breached_at or event.now,
            },
        )

    await record(session, event.organization_id, event.name, event.now, items)


@subscribe(CallRequestUpdated, order=ORDER)
async def call_request_updated(session: AsyncSession, event: CallRequestUpdated) -> None:
    """`call_request.updated`: the request's state (ordered by the request)."""
    c = event.call_request

    def items() -> Iterator[Item]:
        yield (
            c.id,
            {
                "call_request": {
                    "id": c.id,
                    "request_id": c.request_id,
                    "lead_id": c.lead_id,
                    "status": c.status,
                    "attempts": c.attempts,
                    "scheduled_for": c.scheduled_for,
                    "summary": c.summary,
                    "updated_at": c.updated_at,
                }
            },
        )

    await record(session, event.organization_id, event.name, event.now, items)
