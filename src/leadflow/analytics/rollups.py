"""Lead rollups on PostgreSQL: counts of live leads per local creation day and current
(assignee, creator, source, status), so the figures that would read every lead in scope
(total leads, the active pipeline, lead volume over a year) read a few thousand rows.

The database keeps them: statement triggers on `leads` (migration 0014) append signed deltas
for every insert, update, delete and COPY, whichever code path wrote the lead. `compact` folds
the deltas into `lead_rollups` (a periodic job); a reader sums both, so a figure is exact the
moment the writing transaction commits. The day is the creation date in the zone recorded in
`lead_rollup_zones`; when an organisation changes its time zone its rollup is rebuilt in the
same transaction. Without a usable rollup (SQLite, a zone PostgreSQL does not know) analytics
count the leads themselves — same answer, slower.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Subquery,
    delete,
    func,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.analytics.schemas import LeadFilters
from leadflow.authz.actor import Actor
from leadflow.authz.scopes import row_scope_clause
from leadflow.db.dialect import dialect_name, is_postgres
from leadflow.kit import events
from leadflow.models.lead_rollup import (
    NO_SOURCE,
    NO_USER,
    LeadRollupDay,
    LeadRollupDelta,
    LeadRollupStage,
    LeadRollupZone,
)
from leadflow.organizations.events import TimezoneSet
from leadflow.worker.jobs import JobContext, job

# Writers hold this lock shared (in the trigger); a rebuild holds it exclusively, so it sees
# every writer of the organisation committed and none starts until it is done.
_WRITERS = "lead_rollup:"
# Folding and rebuilding exclude each other.
_MAINTENANCE = "lead_rollup_maintenance:"

_NIL = "'00000000-0000-0000-0000-000000000000'::uuid"
_VALUE = (
    "CASE WHEN jsonb_typeof(l.custom -> 'value') = 'number'"
    " THEN (l.custom ->> 'value')::numeric END"
)
_DAY = "(l.created_at AT TIME ZONE :zone)::date"
_REBUILD_DAYS = text(f"""
INSERT INTO lead_rollup_days (organization_id, day, assignee_id, created_by, leads)
SELECT l.organization_id, {_DAY}, coalesce(l.assignee_id, {_NIL}),
       coalesce(l.created_by, {_NIL}), count(*)
  FROM leads l
 WHERE l.organization_id = :org AND l.deleted_at IS NULL
 GROUP BY 1, 2, 3, 4
""")  # noqa: S608 (constant fragments; values are bound)
_REBUILD_STAGES = text(f"""
INSERT INTO lead_rollup_stages
  (organization_id, assignee_id, created_by, source, status, leads, value)
SELECT l.organization_id, coalesce(l.assignee_id, {_NIL}), coalesce(l.created_by, {_NIL}),
       coalesce(l.source, ''), l.status, count(*), sum({_VALUE})
  FROM leads l
 WHERE l.organization_id = :org AND l.deleted_at IS NULL
 GROUP BY 1, 2, 3, 4, 5
""")  # noqa: S608 (constant fragments; values are bound)
_DAY_DIMS = "organization_id, day, assignee_id, created_by"
_STAGE_DIMS = "organization_id, assignee_id, created_by, source, status"
# Both rollups from one sweep of the deltas; each combination is one row of each INSERT, so
# ON CONFLICT meets every existing row at most once.
_FOLD = text(f"""
WITH moved AS (
  DELETE FROM lead_rollup_deltas WHERE organization_id = :org
  RETURNING organization_id, day, assignee_id, created_by, source, status, leads, value
), days AS (
  INSERT INTO lead_rollup_days ({_DAY_DIMS}, leads)
  SELECT {_DAY_DIMS}, sum(leads) FROM moved GROUP BY {_DAY_DIMS}
  ON CONFLICT ({_DAY_DIMS}) DO UPDATE SET leads = lead_rollup_days.leads + excluded.leads
)
INSERT INTO lead_rollup_stages ({_STAGE_DIMS}, leads, value)
SELECT {_STAGE_DIMS}, sum(leads), sum(value) FROM moved GROUP BY {_STAGE_DIMS}
ON CONFLICT ({_STAGE_DIMS}) DO UPDATE SET
  leads = lead_rollup_stages.leads + excluded.leads,
  value = CASE WHEN lead_rollup_stages.value IS NULL AND excluded.value IS NULL THEN NULL
               ELSE coalesce(lead_rollup_stages.value, 0) + coalesce(excluded.value, 0) END
""")  # noqa: S608 (constant fragments)


async def _lock(session: AsyncSession, prefix: str, org_id: uuid.UUID) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"{prefix}{org_id}"},
    )


# Zones PostgreSQL knows, read once per process: `pg_timezone_names` reads the server's
# time-zone files on every query (~90 ms), and every new organisation asks.
_zones: frozenset[str] | None = None


async def _known_zone(session: AsyncSession, timezone: str) -> bool:
    global _zones
    if _zones is None or timezone not in _zones:
        names = await session.scalars(text("SELECT name FROM pg_timezone_names"))
        _zones = frozenset(names)
    return timezone in _zones


async def zone(session: AsyncSession, org_id: uuid.UUID) -> str | None:
    """The time zone the organisation's rollup counts days in; None without a rollup."""
    if not is_postgres(dialect_name(session)):
        return None
    found = await session.scalar(
        select(LeadRollupZone.timezone).where(LeadRollupZone.organization_id == org_id)
    )
    return str(found) if found is not None else None


async def rebuild(session: AsyncSession, org_id: uuid.UUID, timezone: str) -> bool:
    """Recount the organisation's rollup from its leads with days in `timezone`; True when a
    rollup exists afterwards (PostgreSQL knows the zone). A no-op on SQLite."""
    if not is_postgres(dialect_name(session)):
        return False
    await _lock(session, _MAINTENANCE, org_id)
    await _lock(session, _WRITERS, org_id)
    for model in (LeadRollupDelta, LeadRollupDay, LeadRollupStage, LeadRollupZone):
        await session.execute(delete(model).where(model.organization_id == org_id))
    if not await _known_zone(session, timezone):
        return False
    session.add(LeadRollupZone(organization_id=org_id, timezone=timezone))
    await session.flush()
    await session.execute(_REBUILD_DAYS, {"org": org_id, "zone": timezone})
    await session.execute(_REBUILD_STAGES, {"org": org_id})
    return True


async def fold(session: AsyncSession, org_id: uuid.UUID) -> None:
    """Fold the organisation's deltas into its rollup and drop combinations left empty."""
    await _lock(session, _MAINTENANCE, org_id)
    await session.execute(_FOLD, {"org": org_id})
    for model in (LeadRollupDay, LeadRollupStage):
        await session.execute(
            delete(model).where(model.organization_id == org_id, model.leads == 0)
        )


@events.subscribe(TimezoneSet)
async def _on_timezone(session: AsyncSession, event: TimezoneSet) -> None:
    await rebuild(session, event.organization_id, event.timezone)


@job("analytics.fold_rollups")
async def fold_rollups(ctx: JobContext) -> dict[str, int]:
    """Fold the deltas of every organisation that has some, one transaction each."""
    async with ctx.session_factory() as session:
        if not is_postgres(dialect_name(session)):
            return {"organizations": 0}
        orgs = list(await session.scalars(select(LeadRollupDelta.organization_id).distinct()))
    for org_id in orgs:
        async with ctx.session_factory() as session:
            await fold(session, org_id)
            await session.commit()
    return {"organizations": len(orgs)}


def _relation(target: Any, org_id: uuid.UUID, columns: tuple[str, ...]) -> Subquery:
    parts = [
        select(*(getattr(model, c) for c in columns)).where(model.organization_id == org_id)
        for model in (target, LeadRollupDelta)
    ]
    return union_all(*parts).subquery("rollup")


def days(org_id: uuid.UUID) -> Subquery:
    """The organisation's day rollup, folded and not yet folded, as one relation."""
    return _relation(LeadRollupDay, org_id, ("day", "assignee_id", "created_by", "leads"))


def stages(org_id: uuid.UUID) -> Subquery:
    """The organisation's stage rollup, folded and not yet folded, as one relation."""
    columns = ("assignee_id", "created_by", "source", "status", "leads", "value")
    return _relation(LeadRollupStage, org_id, columns)


def conditions(actor: Actor, filters: LeadFilters, r: Subquery) -> list[ColumnElement[bool]]:
    """The actor's row scope and the filters, on rollup rows (as `lead_conditions` on leads);
    the day rollup has no source or status (`Rollup.by_day` says when it answers)."""
    conds: list[ColumnElement[bool]] = [row_scope_clause(actor, [r.c.assignee_id, r.c.created_by])]
    if filters.source is not None:
        conds.append(r.c.source == filters.source)
    if filters.status is not None:
        conds.append(r.c.status == filters.status)
    if filters.unassigned:
        conds.append(r.c.assignee_id == NO_USER)
    elif filters.assignee_id is not None:
        conds.append(r.c.assignee_id == filters.assignee_id)
    return conds


# ---- readers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rollup:
    """Which rollup answers a query: `by_stage` for the active pipeline (any filter),
    `by_day` for counts by creation day (no source or status filter)."""

    by_stage: bool
    by_day: bool


async def available(
    session: AsyncSession, org_id: uuid.UUID, timezone: str, filters: LeadFilters
) -> Rollup:
    """What the organisation's rollup can answer for these filters, its days counted in
    `timezone` (the calendar's). Nothing on SQLite, or while it counts another zone."""
    if filters.source == NO_SOURCE or await zone(session, org_id) != timezone:
        return Rollup(by_stage=False, by_day=False)
    return Rollup(by_stage=True, by_day=filters.source is None and filters.status is None)


async def pipeline(
    session: AsyncSession,
    actor: Actor,
    filters: LeadFilters,
    open_probabilities: Mapping[str, int],
) -> tuple[int, float, float, float]:
    """As the second half of `repository.totals`, from the stage rollup."""
    r = stages(actor.organization_id)
    result = await session.execute(
        select(r.c.status, func.coalesce(func.sum(r.c.leads), 0), func.sum(r.c.value))
        .where(*conditions(actor, filters, r), r.c.status.in_(list(open_probabilities)))
        .group_by(r.c.status)
    )
    count = probs = 0
    total: Any = 0
    weighted: Any = 0
    for status, n, values in result.all():
        prob = open_probabilities[status]
        count += n
        probs += n * prob
        total += values or 0
        weighted += (values or 0) * prob
    return int(count), float(probs) / 100, float(total), float(weighted) / 100


async def stage_values(session: AsyncSession, actor: Actor) -> dict[str, tuple[int, float]]:
    """As `repository.stage_values`, from the stage rollup."""
    r = stages(actor.organization_id)
    n = func.sum(r.c.leads)
    result = await session.execute(
        select(r.c.status, n, func.sum(r.c.value))
        .where(*conditions(actor, LeadFilters(), r))
        .group_by(r.c.status)
        .having(n != 0)
    )
    return {s: (int(c), float(v or 0)) for s, c, v in result.all()}


async def status_assignee_counts(
    session: AsyncSession, actor: Actor
) -> list[tuple[str, uuid.UUID | None, int]]:
    """(status, assignee or None, live leads) in the actor's scope, from the stage rollup."""
    r = stages(actor.organization_id)
    n = func.sum(r.c.leads)
    result = await session.execute(
        select(r.c.status, r.c.assignee_id, n)
        .where(*conditions(actor, LeadFilters(), r))
        .group_by(r.c.status, r.c.assignee_id)
        .having(n != 0)
    )
    return [(s, None if a == NO_USER else a, int(c)) for s, a, c in result.all()]


async def created_per_day(
    session: AsyncSession, actor: Actor, filters: LeadFilters, first: date, last: date
) -> list[tuple[date, int]]:
    """As `repository.created_per_day`, from the day rollup: leads created per local day."""
    r = days(actor.organization_id)
    n = func.sum(r.c.leads)
    result = await session.execute(
        select(r.c.day, n)
        .where(*conditions(actor, filters, r), r.c.day >= first, r.c.day <= last)
        .group_by(r.c.day)
        .having(n != 0)
    )
    return [(d, int(c)) for d, c in result.all()]


async def created_between(
    session: AsyncSession, actor: Actor, filters: LeadFilters, first: date | None, last: date
) -> int:
    """Leads in scope created on the local days `first`..`last` (from the start without
    `first`), from the day rollup."""
    r = days(actor.organization_id)
    where = [*conditions(actor, filters, r), r.c.day <= last]
    if first is not None:
        where.append(r.c.day >= first)
    total = await session.scalar(select(func.coalesce(func.sum(r.c.leads), 0)).where(*where))
    return int(total or 0)
