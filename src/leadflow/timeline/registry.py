"""The registration point of the lead timeline.

Each source knows how to fetch the newest entries of its kinds for a lead and how many it has.
Modules add their kinds (AI generations, call requests …) by calling `register_source`; the
timeline query never changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened to a lead."""

    kind: str
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = ""


Fetch = Callable[[AsyncSession, uuid.UUID, int], Awaitable[list[TimelineEntry]]]
Count = Callable[[AsyncSession, uuid.UUID], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class TimelineSource:
    """A kind of timeline entry: newest-first fetch of up to N entries, and a count."""

    kind: str
    fetch: Fetch
    count: Count


_SOURCES: dict[str, TimelineSource] = {}


def register_source(source: TimelineSource) -> None:
    """Add (or replace) the source of one kind."""
    _SOURCES[source.kind] = source


def sources() -> dict[str, TimelineSource]:
    """Every registered kind."""
    return dict(_SOURCES)


def model_source(
    kind: str,
    model: Any,
    time_col: Any,
    to_entry: Callable[[Any], tuple[str, dict[str, Any]]],
    *,
    where: Sequence[ColumnElement[bool]] = (),
    actor_col: str = "actor_user_id",
) -> TimelineSource:
    """A source over a table with `lead_id`: `to_entry(row)` gives (summary, data)."""

    async def fetch(session: AsyncSession, lead_id: uuid.UUID, n: int) -> list[TimelineEntry]:
        rows = await session.scalars(
            select(model)
            .where(model.lead_id == lead_id, *where)
            .order_by(time_col.desc(), model.id.desc())
            .limit(n)
        )
        out = []
        for row in rows:
            summary, data = to_entry(row)
            out.append(
                TimelineEntry(
                    kind=kind,
                    occurred_at=getattr(row, time_col.key),
                    actor_user_id=getattr(row, actor_col, None),
                    summary=summary,
                    data=data,
                    id=f"{kind}:{row.id}",
                )
            )
        return out

    async def count(session: AsyncSession, lead_id: uuid.UUID) -> int:
        return int(
            await session.scalar(
                select(func.count()).select_from(model).where(model.lead_id == lead_id, *where)
            )
            or 0
        )

    return TimelineSource(kind, fetch, count)
