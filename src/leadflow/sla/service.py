"""SLA clocks in business time, the periodic reminder/breach check, and policies."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import (
    delete_recorded,
    record,
    record_create,
    record_update,
    snapshot,
)
from leadflow.authz.actor import Actor
from leadflow.calendar import BusinessCalendar
from leadflow.calendar.organization import calendar_of
from leadflow.config import Settings
from leadflow.exceptions import NotFound, ValidationFailed
from leadflow.kit import events
from leadflow.kit.clock import utcnow
from leadflow.kit.conditions import lead_matches
from leadflow.kit.pagination import PageParams
from leadflow.models.assignment_rule import SlaPolicy
from leadflow.models.lead import Lead
from leadflow.models.user import User
from leadflow.notifications import service as notifications
from leadflow.sla import repository
from leadflow.sla.events import SlaBreached
from leadflow.sla.schemas import PolicyCreate, PolicyUpdate
from leadflow.users import repository as members

BATCH = 500


async def _calendar(
    session: AsyncSession, org_id: uuid.UUID, policy: SlaPolicy | None
) -> BusinessCalendar:
    if policy is not None and policy.calendar:
        return BusinessCalendar.from_dict(policy.calendar)
    return await calendar_of(session, org_id)


async def start_clocks(
    session: AsyncSession,
    settings: Settings,
    org_id: uuid.UUID,
    leads: Sequence[Any],
    now: datetime,
) -> None:
    """Start the SLA clocks of leads that just got an assignee, in business minutes from `now`.

    The first active policy whose conditions a lead meets sets its duration (else the
    organisation default). Policies and calendars are read once; every lead starting at `now`
    under the same policy gets the same deadline, so each group is one UPDATE — a whole
    import chunk costs as many statements as it has distinct policies.
    """
    if not leads:
        return
    policies = await repository.policies(session, org_id, active_only=True)
    groups: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for lead in leads:
        policy = next((p for p in policies if lead_matches(p.conditions, lead)), None)
        groups.setdefault(policy.id if policy else None, []).append(lead.id)
    by_id = {p.id: p for p in policies}
    for key, ids in groups.items():
        policy = by_id.get(key) if key else None
        duration = policy.duration_minutes if policy else settings.default_sla_duration_minutes
        remind = policy.reminder_minutes_before if policy else settings.default_sla_reminder_minutes
        cal = await _calendar(session, org_id, policy)
        reminder = (
            cal.add_business_minutes(now, duration - remind) if 0 < remind < duration else None
        )
        await repository.start_clocks(
            session,
            ids,
            policy_id=key,
            started_at=now,
            deadline=cal.add_business_minutes(now, duration),
            reminder_at=reminder,
        )


async def stop_clocks(session: AsyncSession, lead_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """The leads got their first response: a running clock is met (in time or late)."""
    if lead_ids:
        await repository.mark_met(session, lead_ids, now)


def _local(dt: datetime, tz: str) -> str:
    return dt.astimezone(ZoneInfo(tz)).strftime("%d.%m.%Y %H:%M")


async def _escalation_targets(session: AsyncSession, lead: Lead) -> list[User]:
    """The lead's creator, or (if none) the managers of the assignee's team."""
    users: list[User] = []
    if lead.created_by is not None and lead.created_by != lead.assignee_id:
        creator = await session.get(User, lead.created_by)
        if creator is not None and creator.status == "active":
            users.append(creator)
    if not users and lead.assignee_id is not None:
        assignee = await session.get(User, lead.assignee_id)
        if assignee is not None and assignee.team_id is not None:
            managers = await members.active_with_role(session, "manager", team_id=assignee.team_id)
            users.extend(m for m in managers if m.id != assignee.id)
    return users


async def _remind(session: AsyncSession, settings: Settings, lead: Lead, now: datetime) -> None:
    assignee = await session.get(User, lead.assignee_id) if lead.assignee_id else None
    if assignee is None or lead.sla_deadline is None:
        return
    cal = await _calendar(session, lead.organization_id, None)
    key = f"sla-reminder:{lead.id}:{lead.sla_deadline.isoformat()}"
    minutes_left = max(0, int((lead.sla_deadline - now).total_seconds() // 60))
    await notifications.notify(
        session,
        organization_id=lead.organization_id,
        user_id=assignee.id,
        kind="sla_reminder",
        title=f"SLA due soon: {lead.full_name}",
        lead_id=lead.id,
        data={"deadline": lead.sla_deadline.isoformat(), "minutes_left": minutes_left},
        delivery_key=key,
    )
    await notifications.queue_email(
        session,
        organization_id=lead.organization_id,
        to=assignee.email,
        template="sla_reminder",
        language=assignee.language,
        context={
            "recipient_name": assignee.full_name,
            "lead_name": lead.full_name or "Lead",
            "deadline_local": _local(lead.sla_deadline, cal.timezone),
            "minutes_left": minutes_left,
            "lead_url": f"{settings.public_url.rstrip('/')}/leads/{lead.id}",
        },
        delivery_key=key,
        max_attempts=settings.outbox_max_attempts,
    )
    await record(
        session,
        actor=None,
        organization_id=lead.organization_id,
        action="lead.sla_reminder",
        resource_type="lead",
        resource_id=lead.id,
        after={"sla_deadline": lead.sla_deadline, "assignee_id": assignee.id},
    )


async def _breach(session: AsyncSession, settings: Settings, lead: Lead, now: datetime) -> None:
    assert lead.sla_deadline is not None
    cal = await _calendar(session, lead.organization_id, None)
    assignee = await session.get(User, lead.assignee_id) if lead.assignee_id else None
    recipients = ([assignee] if assignee else []) + await _escalation_targets(session, lead)
    for user in recipients:
        key = f"sla-breached:{lead.id}:{lead.sla_deadline.isoformat()}:{user.id}"
        await notifications.notify(
            session,
            organization_id=lead.organization_id,
            user_id=user.id,
            kind="sla_breached",
            title=f"SLA breached: {lead.full_name}",
            lead_id=lead.id,
            data={"deadline": lead.sla_deadline.isoformat()},
            delivery_key=key,
        )
        await notifications.queue_email(
            session,
            organization_id=lead.organization_id,
            to=user.email,
            template="sla_breached",
            language=user.language,
            context={
                "recipient_name": user.full_name,
                "lead_name": lead.full_name or "Lead",
                "deadline_local": _local(lead.sla_deadline, cal.timezone),
                "assignee_name": assignee.full_name if assignee else "-",
                "lead_url": f"{settings.public_url.rstrip('/')}/leads/{lead.id}",
            },
            delivery_key=key,
            max_attempts=settings.outbox_max_attempts,
        )
    await events.publish(
        session, SlaBreached(organization_id=lead.organization_id, lead=lead, now=now)
    )
    await record(
        session,
        actor=None,
        organization_id=lead.organization_id,
        action="lead.sla_breached",
        resource_type="lead",
        resource_id=lead.id,
        after={
            "sla_deadline": lead.sla_deadline,
            "sla_breached_at": now,
            "notified": [str(u.id) for u in recipients],
        },
    )


async def check(session: AsyncSession, settings: Settings, now: datetime) -> dict[str, int]:
    """Send due reminders and mark breaches, each exactly once per lead and deadline.

    Each lead is claimed with a conditional UPDATE (`… IS NULL`), so concurrent checks never
    notify twice; the partial indexes keep both scans proportional to the leads that are due.
    """
    reminded = breached = 0
    for lead_id in await repository.due_reminder_ids(session, now, BATCH):
        if await repository.claim_reminder(session, lead_id, now):
            lead = await session.get(Lead, lead_id, populate_existing=True)
            assert lead is not None
            await _remind(session, settings, lead, now)
            reminded += 1
    for lead_id in await repository.late_ids(session, now, BATCH):
        if await repository.claim_breach(session, lead_id, now):
            lead = await session.get(Lead, lead_id, populate_existing=True)
            assert lead is not None
            await _breach(session, settings, lead, now)
            breached += 1
    return {"reminded": reminded, "breached": breached}


async def leads_in_state(
    session: AsyncSession, actor: Actor, state: str, page: PageParams
) -> tuple[list[Lead], int]:
    """Leads in the actor's scope whose SLA is in `state`, most urgent first."""
    return await repository.leads_in_state(session, actor, state, utcnow(), page)


async def list_policies(session: AsyncSession, actor: Actor) -> list[SlaPolicy]:
    """Policies in evaluation order."""
    return await repository.policies(session, actor.organization_id)


async def get_policy(session: AsyncSession, actor: Actor, policy_id: uuid.UUID) -> SlaPolicy:
    """A policy of the actor's organisation, or 404."""
    row = await repository.get_policy(session, actor, policy_id)
    if row is None:
        raise NotFound("SLA policy not found")
    return row


def _valid_calendar(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        return BusinessCalendar.from_dict(data).to_dict()
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="calendar") from None


async def create_policy(
    session: AsyncSession, actor: Actor, settings: Settings, data: PolicyCreate
) -> SlaPolicy:
    """Add a policy."""
    existing = await list_policies(session, actor)
    row = SlaPolicy(
        organization_id=actor.organization_id,
        name=data.name,
        duration_minutes=data.duration_minutes or settings.default_sla_duration_minutes,
        reminder_minutes_before=data.reminder_minutes_before,
        conditions=data.conditions,
        calendar=_valid_calendar(data.calendar),
        position=len(existing) if data.position is None else data.position,
        is_active=data.is_active,
    )
    session.add(row)
    await session.flush()
    await record_create(session, actor, row, "sla_policy.create", "sla_policy")
    return row


async def update_policy(
    session: AsyncSession, actor: Actor, policy_id: uuid.UUID, data: PolicyUpdate
) -> SlaPolicy:
    """Change a policy (running clocks keep their deadlines)."""
    row = await get_policy(session, actor, policy_id)
    before = snapshot(row)
    fields = data.model_dump(exclude_unset=True)
    if "calendar" in fields:
        fields["calendar"] = _valid_calendar(fields["calendar"])
    for key, value in fields.items():
        if value is not None or key == "calendar":
            setattr(row, key, value)
    await session.flush()
    await record_update(session, actor, row, before, "sla_policy.update", "sla_policy")
    return row


async def delete_policy(session: AsyncSession, actor: Actor, policy_id: uuid.UUID) -> None:
    """Remove a policy."""
    row = await get_policy(session, actor, policy_id)
    await delete_recorded(session, actor, row, "sla_policy.delete", "sla_policy")
