"""The lead an AI call is about: a stored lead in the actor's scope, or an inline one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai import repository
from leadflow.ai.local_rules import detect_language
from leadflow.ai.schemas import LeadIn
from leadflow.ai.types import LeadContext
from leadflow.authz.actor import Actor
from leadflow.leads import service as leads
from leadflow.models.lead import Lead


async def _context_of(
    session: AsyncSession, lead: Lead, *, now: datetime, default_language: str
) -> LeadContext:
    """A stored lead as plain provider data (with its open and overdue tasks)."""
    open_tasks, overdue = await repository.task_counts(session, lead.id, now)
    return LeadContext(
        first_name=lead.first_name,
        last_name=lead.last_name,
        company=lead.company,
        email=lead.email,
        phone=lead.phone,
        channel=lead.channel,
        status=lead.status,
        notes=lead.notes,
        disg_type=lead.disg_type,
        last_contacted_at=lead.last_contacted_at,
        created_at=lead.created_at,
        open_tasks=open_tasks,
        overdue_tasks=overdue,
        language=detect_language(lead.notes) or default_language,
    )


def _context_from(data: LeadIn, *, default_language: str) -> LeadContext:
    """An inline lead (seed 000's object) as provider data."""
    first, last = data.first_name, data.last_name
    if data.name and not (first or last):
        first, last = leads.split_name(data.name)
    return LeadContext(
        first_name=first,
        last_name=last,
        company=data.company,
        email=data.email,
        phone=data.phone,
        channel=data.channel,
        status=data.status,
        notes=data.notes,
        disg_type=data.disg_type,
        last_contacted_at=data.last_contact,
        language=data.language or detect_language(data.notes) or default_language,
    )


@dataclass
class Subject:
    """The lead a call is about: the stored row (if any) and its provider context."""

    row: Lead | None
    context: LeadContext


async def resolve(
    session: AsyncSession,
    actor: Actor,
    *,
    lead: LeadIn | None,
    lead_id: uuid.UUID | None,
    now: datetime,
    default_language: str,
) -> Subject | None:
    """The stored lead in scope (404 otherwise; reading it needs `leads:read`) or the inline one."""
    if lead_id is not None:
        row = await leads.get_lead(session, actor, lead_id)
        actor.require("leads:read")
        ctx = await _context_of(session, row, now=now, default_language=default_language)
        return Subject(row, ctx)
    if lead is not None:
        return Subject(None, _context_from(lead, default_language=default_language))
    return None
