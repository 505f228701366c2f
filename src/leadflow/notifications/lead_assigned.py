"""The "lead assigned" message: sent to the assignee on every `lead.assigned` event (in-app
and by email through the outbox), and again on request."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.kit.events import subscribe
from leadflow.leads.events import LeadsAssigned
from leadflow.leads.service import get_lead
from leadflow.models.lead import Lead
from leadflow.models.user import User
from leadflow.notifications.errors import AssigneeInactive, NotAssigned
from leadflow.notifications.service import notify, queue_email
from leadflow.users import repository as members


@subscribe(LeadsAssigned)
async def tell_assignees(session: AsyncSession, event: LeadsAssigned) -> None:
    """One lead: an in-app notification and an email to its new assignee. Many at once (a
    bulk action): one in-app summary per assignee instead of a message per lead, so a bulk
    assignment costs the same statements for 2 leads or 500. An import sends its own
    summary (`notify` is False)."""
    if not event.notify:
        return
    if len(event.assignments) > 1:
        await _summaries(session, event)
        return
    for done in event.assignments:
        if done.to_user_id is None:
            continue
        assignee = await session.get(User, done.to_user_id)
        if assignee is None:
            continue
        lead = done.lead
        key = f"lead-assigned:{done.assignment_id}"
        await notify(
            session,
            organization_id=event.organization_id,
            user_id=assignee.id,
            kind="lead_assigned",
            title=f"New lead assigned: {lead.full_name or lead.email or ''}",
            body=done.reason,
            lead_id=lead.id,
            delivery_key=key,
            data={
                "assignment_id": str(done.assignment_id),
                "sla_deadline": lead.sla_deadline.isoformat() if lead.sla_deadline else None,
            },
        )
        await queue_assignment_email(
            session,
            event.settings,
            lead,
            assignee,
            by=event.actor.label if event.actor else "Leadflow",
            reason=done.reason,
            delivery_key=key,
        )


SUMMARY_LEAD_IDS = 50


async def _summaries(session: AsyncSession, event: LeadsAssigned) -> None:
    per_user: dict[uuid.UUID, list[uuid.UUID]] = {}
    for done in event.assignments:
        if done.to_user_id is not None:
            per_user.setdefault(done.to_user_id, []).append(done.lead.id)
    by = event.actor.label if event.actor else "Leadflow"
    for user_id, lead_ids in per_user.items():
        first = event.assignments[0].assignment_id
        await notify(
            session,
            organization_id=event.organization_id,
            user_id=user_id,
            kind="leads_assigned",
            title=f"{len(lead_ids)} leads were assigned to you",
            body=f"by {by}",
            delivery_key=f"leads-assigned:{first}:{user_id}",
            data={
                "count": len(lead_ids),
                "lead_ids": [str(i) for i in lead_ids[:SUMMARY_LEAD_IDS]],
            },
        )


async def queue_assignment_email(
    session: AsyncSession,
    settings: Settings,
    lead: Lead,
    assignee: User,
    *,
    by: str | None,
    reason: str | None,
    delivery_key: str,
) -> None:
    """The "lead assigned" email to the assignee, through the outbox."""
    await queue_email(
        session,
        organization_id=lead.organization_id,
        to=assignee.email,
        template="lead_assigned",
        language=assignee.language,
        context={
            "recipient_name": assignee.full_name,
            "lead_name": lead.full_name or lead.email or lead.phone or "Lead",
            "lead_company": lead.company,
            "assigned_by": by,
            "reason": reason,
            "lead_url": f"{settings.public_url.rstrip('/')}/leads/{lead.id}",
        },
        delivery_key=delivery_key,
        max_attempts=settings.outbox_max_attempts,
    )


async def resend(
    session: AsyncSession, actor: Actor, settings: Settings, lead_id: uuid.UUID
) -> str:
    """Queue the "lead assigned" email to the current assignee again; returns the delivery key."""
    lead = await get_lead(session, actor, lead_id)
    if lead.assignee_id is None:
        raise NotAssigned("The lead has no assignee to notify")
    assignee = await members.get(session, actor, lead.assignee_id)
    if assignee is None or assignee.status != "active":
        raise AssigneeInactive("The assignee is not an active user")
    key = f"lead-assigned-resend:{lead.id}:{uuid.uuid4().hex}"
    await queue_assignment_email(
        session, settings, lead, assignee, by=actor.label, reason="resent", delivery_key=key
    )
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.resend_email",
        resource_type="lead",
        resource_id=lead.id,
        after={"to": assignee.email, "delivery_key": key},
    )
    return key
