"""A deactivated member's open leads go on: to a named member, or where the assignment rules
send them (unassigned when no rule picks anyone).

Written through the leads package's set-based door (`leads.bulk.update_records`), so each
lead gets its assignment history, audit row, SLA clock and the new assignee's message once,
exactly as a bulk assign writes them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.assignment.service import RulePicker
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.kit.clock import utcnow
from leadflow.kit.records import RecordView
from leadflow.leads import bulk
from leadflow.leads import repository as leads
from leadflow.leads.repository import WRITABLE
from leadflow.leads.schemas import LeadFilter
from leadflow.pipeline import service as pipeline

REASON = "previous assignee deactivated"
# Leads moved per statement set; a member with more open leads is handed over in chunks.
CHUNK = 1000
# A bound on one member's open leads (far beyond what one person works on).
MAX_LEADS = 1_000_000


@dataclass(frozen=True, slots=True)
class HandoverResult:
    """How many open leads went to somebody, and how many were left unassigned."""

    reassigned: int = 0
    unassigned: int = 0


async def hand_over(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    user_id: uuid.UUID,
    to: uuid.UUID | None,
) -> HandoverResult:
    """Give `user_id`'s open leads (in the actor's scope) to `to`, else by the rules.

    Call after the user is inactive (and flushed): the rules then no longer pick them.
    """
    stages = await pipeline.list_stages(session, actor)
    open_keys = [s.key for s in stages if s.category == "open"]
    if not open_keys:
        return HandoverResult()
    picker = None if to is not None else await RulePicker.load(session, actor.organization_id)

    def next_assignee(row: dict[str, Any]) -> dict[str, Any]:
        if to is not None:
            return {"assignee_id": to}
        picked = picker.pick(RecordView(row)) if picker else None
        return {"assignee_id": picked[0] if picked else None}

    wanted = LeadFilter(assigned_to=str(user_id), status=open_keys)
    ids = await leads.select_ids(session, actor, wanted, MAX_LEADS)
    reassigned = unassigned = 0
    for start in range(0, len(ids), CHUNK):
        result = await bulk.update_records(
            session,
            actor,
            [(i, next_assignee) for i in ids[start : start + CHUNK]],
            now=utcnow(),
            reason=REASON,
            fill=False,
            audit_action="lead.handover",
            settings=settings,
            writable=(*WRITABLE, "assignee_id"),
        )
        for done in result.updated:
            if done.after.get("assignee_id") is None:
                unassigned += 1
            else:
                reassigned += 1
    if picker:
        await picker.save(session)
    return HandoverResult(reassigned, unassigned)
