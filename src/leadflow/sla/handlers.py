"""SLA clocks follow the lead events: an assignment starts one, the first response stops it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.events import subscribe
from leadflow.leads.events import LeadsAssigned, LeadsResponded
from leadflow.sla import service


# Before other subscribers of `lead.assigned`: the assignee's message names the new deadline.
@subscribe(LeadsAssigned, order=10)
async def start_on_assignment(session: AsyncSession, event: LeadsAssigned) -> None:
    """Every lead that got an assignee gets a fresh deadline."""
    leads = [a.lead for a in event.assignments if a.to_user_id is not None]
    await service.start_clocks(session, event.settings, event.organization_id, leads, event.now)


@subscribe(LeadsResponded)
async def stop_on_response(session: AsyncSession, event: LeadsResponded) -> None:
    """The lead left the first stage or was contacted outbound: its clock is met."""
    await service.stop_clocks(session, event.lead_ids, event.now)
