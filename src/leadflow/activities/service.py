"""Logging interactions (moves last contact, may clear needs-action) and delivery events
(an unsubscribe revokes that channel's consent)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.activities import repository
from leadflow.activities.schemas import EventCreate, InteractionCreate
from leadflow.audit.service import record
from leadflow.authz.actor import Actor
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.leads import service as leads
from leadflow.leads.schemas import ConsentChannel, ConsentIn
from leadflow.models.activity import Interaction, MessageEvent
from leadflow.organizations import service as orgs

# Internal notes are not contact with the lead.
_CONTACT_TYPES = frozenset({"call", "email", "meeting", "sms", "whatsapp"})


async def log_interaction(
    session: AsyncSession, actor: Actor, lead_id: uuid.UUID, data: InteractionCreate
) -> Interaction:
    """Record an interaction on a lead in scope and update the lead's contact state."""
    lead = await leads.get_lead(session, actor, lead_id, for_update=True)
    occurred = data.occurred_at or utcnow()
    row = Interaction(
        organization_id=lead.organization_id,
        lead_id=lead.id,
        type=data.type.value,
        direction=data.direction.value,
        subject=data.subject,
        body=data.body,
        outcome=data.outcome,
        occurred_at=occurred,
        duration_seconds=data.duration_seconds,
        actor_user_id=actor.user_id,
    )
    session.add(row)
    lead_changes: dict[str, object] = {}
    if row.type in _CONTACT_TYPES:
        settings = await orgs.org_settings(session, lead.organization_id)
        lead_changes = await leads.record_contact(
            session,
            actor,
            lead,
            occurred,
            outbound=row.direction == "outbound",  # the first outbound contact answers the lead
            clear_needs_action=settings.clear_needs_action_on_interaction,
        )
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=lead.organization_id,
        action="interaction.create",
        resource_type="lead",
        resource_id=lead.id,
        after={
            "interaction_id": row.id,
            "type": row.type,
            "direction": row.direction,
            **lead_changes,
        },
    )
    return row


async def interactions(
    session: AsyncSession, actor: Actor, lead_id: uuid.UUID, page: PageParams
) -> tuple[list[Interaction], int]:
    """Interactions of a lead in scope."""
    lead = await leads.get_lead(session, actor, lead_id)
    return await repository.list_interactions(session, lead.id, page)


async def record_event(
    session: AsyncSession, actor: Actor, lead_id: uuid.UUID, data: EventCreate
) -> MessageEvent:
    """Store a delivery event; `unsubscribed` revokes the channel's consent."""
    lead = await leads.get_lead(session, actor, lead_id)
    row = MessageEvent(
        organization_id=lead.organization_id,
        lead_id=lead.id,
        type=data.type.value,
        channel=data.channel.value,
        message_id=data.message_id,
        data=data.data,
        occurred_at=data.occurred_at or utcnow(),
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
    )
    session.add(row)
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=lead.organization_id,
        action="message_event.create",
        resource_type="lead",
        resource_id=lead.id,
        after={"event_id": row.id, "type": row.type, "channel": row.channel},
    )
    if row.type == "unsubscribed":
        await leads.add_consent(
            session,
            actor,
            lead,
            ConsentIn(
                channel=ConsentChannel(row.channel),
                granted=False,
                # A message id (up to 200) is cut to fit a consent's source (120).
                source=f"unsubscribed ({(row.message_id or 'message event')[:100]})",
            ),
        )
    return row


async def events(
    session: AsyncSession, actor: Actor, lead_id: uuid.UUID, page: PageParams
) -> tuple[list[MessageEvent], int]:
    """Delivery events of a lead in scope."""
    lead = await leads.get_lead(session, actor, lead_id)
    return await repository.list_events(session, lead.id, page)
