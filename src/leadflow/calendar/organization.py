"""An organisation's business calendar as stored in its settings (`settings["calendar"]`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.calendar.business import BusinessCalendar
from leadflow.models.organization import Organization


async def calendar_of(session: AsyncSession, organization_id: uuid.UUID) -> BusinessCalendar:
    """The organisation's business calendar (the default one when it has set none).

    The default: Mon-Fri 08:00-18:00 Europe/Berlin, German public holidays.
    """
    org = await session.get(Organization, organization_id)
    return BusinessCalendar.from_dict((org.settings or {}).get("calendar") if org else None)
