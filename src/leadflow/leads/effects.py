"""What every lead change brings with it, written once: derived fields, version, status and
assignment history, audit, and the domain event (`leads.events`).

`leads.service` (one lead) and `leads.bulk` (many) are the doors; both come here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import diff, record, snapshot
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.db.base import new_id
from leadflow.kit import events
from leadflow.kit.clock import utcnow
from leadflow.leads.events import (
    Assignment,
    Change,
    LeadsAssigned,
    LeadsResponded,
    LeadsStatusChanged,
    LeadsUpdated,
    Move,
)
from leadflow.models.lead import Lead, reached_with
from leadflow.models.lead_history import LeadAssignment, LeadStatusChange
from leadflow.pipeline import service as pipeline

_AUDIT_EXCLUDE = frozenset({"search_text", "stages_reached", "updated_at", "version"})


def touch(lead: Lead) -> None:
    """Count a user-visible edit (the optimistic-concurrency version)."""
    lead.version = (lead.version or 1) + 1


def derived(
    first: str | None, last: str | None, email: str | None, phone: str | None, company: str | None
) -> tuple[str, str]:
    """(full name, search text) of a lead's name and contact fields."""
    # No generator expressions: an import derives these for every lead.
    full_name = f"{first} {last}" if first and last else first or last or ""
    parts = [p for p in (full_name, email, phone, company) if p]
    return full_name, " ".join(parts).lower()


def derive(lead: Any) -> None:
    """Recompute the derived columns (full name, search text) of a lead instance."""
    lead.full_name, lead.search_text = derived(
        lead.first_name, lead.last_name, lead.email, lead.phone, lead.company
    )


def derive_record(rec: dict[str, Any]) -> None:
    """`derive` for a lead given as a column dict (set-based writes)."""
    get = rec.get
    rec["full_name"], rec["search_text"] = derived(
        get("first_name"), get("last_name"), get("email"), get("phone"), get("company")
    )


def audit_view(lead: Lead) -> dict[str, Any]:
    """A lead as its audit rows show it (JSON-ready, derived columns left out)."""
    return snapshot(lead, exclude=_AUDIT_EXCLUDE)


async def move_many(
    session: AsyncSession,
    actor: Actor | None,
    org_id: uuid.UUID,
    pairs: Sequence[tuple[Any, str]],
    reason: str | None,
    now: datetime,
) -> list[Move]:
    """Move leads (instances) to new stages: history rows, `lead.status_changed`, and
    `lead.responded` for those leaving the first stage (that counts as the response)."""
    moves = [
        Move(lead, lead.status, status, reason) for lead, status in pairs if status != lead.status
    ]
    if not moves:
        return []
    first = (await pipeline.first_stage(session, org_id)).key
    for move in moves:
        session.add(
            LeadStatusChange(
                id=new_id(),
                organization_id=org_id,
                lead_id=move.lead.id,
                actor_user_id=actor.user_id if actor else None,
                from_status=move.from_status,
                to_status=move.to_status,
                reason=reason,
                created_at=now,
            )
        )
        move.lead.status = move.to_status
        move.lead.stages_reached = reached_with(move.lead.stages_reached, move.to_status)
    await session.flush()
    await events.publish(
        session, LeadsStatusChanged(actor=actor, organization_id=org_id, now=now, moves=moves)
    )
    responded = [m.lead.id for m in moves if m.from_status == first]
    if responded:
        await events.publish(
            session,
            LeadsResponded(actor=actor, organization_id=org_id, now=now, lead_ids=responded),
        )
    return moves


async def assign_many(
    session: AsyncSession,
    settings: Settings,
    actor: Actor | None,
    org_id: uuid.UUID,
    items: Sequence[tuple[Any, uuid.UUID | None, str | None, uuid.UUID | None]],
    now: datetime,
    *,
    notify: bool = True,
) -> list[Assignment]:
    """Give leads (instances) new assignees — `(lead, user id, reason, rule id)` each: history
    rows and `lead.assigned` (SLA clocks start, assignees are told)."""
    done: list[Assignment] = []
    for lead, user_id, reason, rule_id in items:
        row_id = new_id()
        previous = lead.assignee_id
        lead.assignee_id = user_id
        session.add(
            LeadAssignment(
                id=row_id,
                organization_id=org_id,
                lead_id=lead.id,
                actor_user_id=actor.user_id if actor else None,
                from_user_id=previous,
                to_user_id=user_id,
                reason=reason,
                rule_id=rule_id,
                created_at=now,
            )
        )
        done.append(Assignment(lead, row_id, previous, user_id, reason))
    if not done:
        return []
    await session.flush()
    await events.publish(
        session,
        LeadsAssigned(
            actor=actor,
            organization_id=org_id,
            now=now,
            settings=settings,
            assignments=done,
            notify=notify,
        ),
    )
    return done


async def announce_update(
    session: AsyncSession,
    actor: Actor | None,
    lead: Lead,
    before: dict[str, Any],
    action: str,
    *,
    extra: dict[str, Any] | None = None,
) -> None:
    """Audit (as `action`, with `extra` in its after-image) and announce (`lead.updated`) the
    fields of `lead` that changed since `before` (its audit view). Nothing changed and no
    `extra`: nothing is written."""
    b, a = diff(before, audit_view(lead))
    if not a and not extra:
        return
    await record(
        session,
        actor=actor,
        organization_id=lead.organization_id,
        action=action,
        resource_type="lead",
        resource_id=lead.id,
        before=b,
        after={**a, **(extra or {})},
    )
    if a:
        await events.publish(
            session,
            LeadsUpdated(
                actor=actor,
                organization_id=lead.organization_id,
                now=utcnow(),
                changes=[Change(lead.id, b, a)],
            ),
        )
