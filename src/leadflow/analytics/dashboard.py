"""The dashboard (seed 004): the leads in the caller's scope as they stand now."""

from __future__ import annotations

import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.analytics import periods, repository, rollups
from leadflow.analytics.schemas import AssigneeLoad, DashboardMetrics, LeadFilters, StatusCount
from leadflow.analytics.service import pipeline_of, timezone_of
from leadflow.authz.actor import Actor
from leadflow.kit.clock import utcnow


async def metrics(session: AsyncSession, actor: Actor) -> DashboardMetrics:
    """Totals by status, assigned/unassigned, new today and this week (the organisation's
    time zone; the week starts on Monday), and SLA clocks at risk and breached."""
    now = utcnow()
    tz = await timezone_of(session, actor.organization_id)
    zone = ZoneInfo(tz)
    today = periods.today(now, tz)
    day_start = periods.local_midnight(today, zone)
    week_start = periods.local_midnight(today - timedelta(days=today.weekday()), zone)
    pipeline = await pipeline_of(session, actor.organization_id)
    per_status: dict[str, int] = {}
    assigned = unassigned = 0
    for status, is_assigned, n in await _status_counts(session, actor, tz):
        per_status[status] = per_status.get(status, 0) + n
        if is_assigned:
            assigned += n
        else:
            unassigned += n
    by_status = [
        StatusCount(status=s.key, name=s.name, category=s.category, count=per_status.pop(s.key, 0))
        for s in pipeline.stages
    ]
    # Statuses no stage has any more (e.g. left by an old import) still count in the totals.
    by_status += [
        StatusCount(status=key, name=key, category=None, count=n)
        for key, n in sorted(per_status.items())
    ]
    new_today, new_week = await repository.created_since(session, actor, day_start, week_start)
    at_risk, breached = await repository.sla_counts(session, actor, now)
    return DashboardMetrics(
        timezone=tz,
        total_leads=assigned + unassigned,
        by_status=by_status,
        assigned=assigned,
        unassigned=unassigned,
        new_today=new_today,
        new_this_week=new_week,
        sla_at_risk=at_risk,
        sla_breached=breached,
    )


async def stage_values(session: AsyncSession, actor: Actor) -> dict[str, tuple[int, float]]:
    """(live leads, Σ value) per stage in the actor's scope, now (the pipeline board's column
    heads): from the stage rollup where there is one, else from the leads."""
    tz = await timezone_of(session, actor.organization_id)
    if (await rollups.available(session, actor.organization_id, tz, LeadFilters())).by_stage:
        return await rollups.stage_values(session, actor)
    return await repository.stage_values(session, actor)


async def _status_counts(
    session: AsyncSession, actor: Actor, tz: str
) -> list[tuple[str, bool, int]]:
    """(status, assigned?, leads) in scope: from the stage rollup where there is one (a few
    hundred rows instead of every lead), else from the leads."""
    if (await rollups.available(session, actor.organization_id, tz, LeadFilters())).by_stage:
        rows = await rollups.status_assignee_counts(session, actor)
        return [(status, uid is not None, n) for status, uid, n in rows]
    return await repository.status_counts(session, actor)


async def _loads(
    session: AsyncSession, actor: Actor, open_keys: list[str], won_keys: list[str]
) -> dict[uuid.UUID, tuple[int, int, int]]:
    """(open, won, breached now) per assignee in scope; open and won from the stage rollup
    where there is one, the breaches from the SLA clocks."""
    now = utcnow()
    tz = await timezone_of(session, actor.organization_id)
    if not (await rollups.available(session, actor.organization_id, tz, LeadFilters())).by_stage:
        return await repository.assignee_loads(session, actor, open_keys, won_keys, now)
    out: dict[uuid.UUID, list[int]] = {}
    for status, uid, n in await rollups.status_assignee_counts(session, actor):
        if uid is None:
            continue
        row = out.setdefault(uid, [0, 0, 0])
        row[0] += n if status in open_keys else 0
        row[1] += n if status in won_keys else 0
    for uid, n in (await repository.breached_by_assignee(session, actor, now)).items():
        out.setdefault(uid, [0, 0, 0])[2] = n
    return {uid: (o, w, b) for uid, (o, w, b) in out.items()}


async def leads_per_assignee(session: AsyncSession, actor: Actor) -> list[AssigneeLoad]:
    """Per assignee in scope: open and won leads, SLA breaches now, and the open leads as a
    share of their capacity; every active user in scope has a row."""
    pipeline = await pipeline_of(session, actor.organization_id)
    loads = await _loads(session, actor, pipeline.keys("open"), pipeline.keys("won"))
    out = []
    for uid, name, capacity in await repository.people(session, actor, set(loads)):
        open_, won, breached = loads.get(uid, (0, 0, 0))
        out.append(
            AssigneeLoad(
                user_id=uid,
                full_name=name,
                open=open_,
                won=won,
                breached=breached,
                capacity=capacity,
                load_percent=round(100 * open_ / capacity, 2) if capacity else None,
                at_capacity=capacity is not None and open_ >= capacity,
            )
        )
    return out
