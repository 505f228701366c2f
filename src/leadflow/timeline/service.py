"""Merge every registered source into one newest-first page."""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

import leadflow.timeline.sources  # noqa: F401  (registers the built-in kinds)
from leadflow.authz.actor import Actor
from leadflow.exceptions import ValidationFailed
from leadflow.kit.pagination import PageParams
from leadflow.leads import service as leads
from leadflow.timeline.registry import TimelineEntry, sources
from leadflow.timeline.schemas import ActorRef, TimelineItem
from leadflow.users import repository as users

MAX_DEPTH = 10_000
_SHOWN_UNKNOWN = 5  # an error names a few unknown kinds, not every one sent


def _wanted_kinds(kinds: list[str] | None, registered: Mapping[str, object]) -> list[str]:
    """The requested kinds, each once, in the order asked; every registered kind when none.

    Repeats are collapsed so `?kind=x` sent a thousand times costs one query per kind, and
    anything unknown is a 422, so the list can never be longer than the registered kinds.
    """
    if not kinds:
        return list(registered)
    wanted = list(dict.fromkeys(kinds))
    unknown = sorted(k for k in wanted if k not in registered)
    if unknown:
        more = " …" if len(unknown) > _SHOWN_UNKNOWN else ""
        shown = ", ".join(unknown[:_SHOWN_UNKNOWN]) + more
        raise ValidationFailed(
            f"Unknown kind(s): {shown}",
            errors=[{"loc": ["query", "kind"], "msg": f"one of {', '.join(sorted(registered))}"}],
        )
    return wanted


async def timeline(
    session: AsyncSession,
    actor: Actor,
    lead_id: uuid.UUID,
    page: PageParams,
    kinds: list[str] | None = None,
) -> tuple[list[TimelineItem], int]:
    """A page of the lead's timeline, optionally only some kinds."""
    lead = await leads.get_lead(session, actor, lead_id)
    registered = sources()
    wanted = _wanted_kinds(kinds, registered)
    if page.offset + page.limit > MAX_DEPTH:
        raise ValidationFailed(
            f"The timeline pages up to {MAX_DEPTH} entries deep",
            errors=[{"loc": ["query", "offset"], "msg": "too deep"}],
        )
    n = page.offset + page.limit
    per_source: list[list[TimelineEntry]] = []
    total = 0
    for kind in wanted:
        src = registered[kind]
        per_source.append(await src.fetch(session, lead.id, n))
        total += await src.count(session, lead.id)
    merged = heapq.merge(*per_source, key=lambda e: (e.occurred_at, e.id), reverse=True)
    window = list(merged)[page.offset : n]
    names = await users.full_names(session, {e.actor_user_id for e in window if e.actor_user_id})
    items = [
        TimelineItem(
            id=e.id,
            kind=e.kind,
            occurred_at=e.occurred_at,
            summary=e.summary,
            data=e.data,
            actor=ActorRef(id=e.actor_user_id, name=names.get(e.actor_user_id, "unknown"))
            if e.actor_user_id
            else None,
        )
        for e in window
    ]
    return items, total
