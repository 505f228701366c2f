"""Analytics: KPIs, lead volume, funnel, conversion by source, counselor performance, alerts.

Every figure counts only live leads inside the caller's row scope (own, team or organisation)
and comes from one aggregate query; this module resolves the period and the pipeline and
turns the counts into rates. The definitions are written out in docs/api.md ("Analytics").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.analytics import periods, repository, rollups
from leadflow.analytics.errors import InvalidFilter
from leadflow.analytics.periods import Granularity, Period
from leadflow.analytics.schemas import (
    ActivePipeline,
    Alert,
    CounselorStats,
    FunnelStage,
    Kpis,
    LeadFilters,
    PeriodRead,
    SourceConversion,
    VolumePoint,
)
from leadflow.authz.actor import Actor
from leadflow.authz.scopes import scope_kind
from leadflow.calendar.organization import calendar_of
from leadflow.imports import repository as imports_repository
from leadflow.kit.clock import utcnow
from leadflow.models.lead import Lead, reached_keys
from leadflow.models.outbox import OutboxMessage
from leadflow.models.pipeline_stage import PipelineStage
from leadflow.organizations.service import org_settings
from leadflow.pipeline import repository as pipeline_repository

MAX_ALERTS = 500


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The organisation's stages in order, and the keys of each category."""

    stages: list[PipelineStage]

    def keys(self, category: str) -> list[str]:
        """Keys of the stages of `category` (open, won or lost)."""
        return [s.key for s in self.stages if s.category == category]


async def pipeline_of(session: AsyncSession, org_id: uuid.UUID) -> Pipeline:
    """The organisation's pipeline."""
    return Pipeline(await pipeline_repository.list_stages(session, org_id))


async def timezone_of(session: AsyncSession, org_id: uuid.UUID) -> str:
    """The organisation's time zone (its business calendar's)."""
    return (await calendar_of(session, org_id)).timezone


def rate(part: int, whole: int) -> float:
    """`part` of `whole` in percent, two decimals; 0.0 when `whole` is 0."""
    return round(100 * part / whole, 2) if whole else 0.0


def lead_filters(
    actor: Actor, *, source: str | None, status: str | None, assigned_to: str | None
) -> LeadFilters:
    """Filters from the query: `assigned_to` is a user id, `me` or `none` (unassigned)."""
    assignee: uuid.UUID | None = None
    unassigned = False
    if assigned_to is not None:
        value = assigned_to.strip().lower()
        if value == "none":
            unassigned = True
        elif value == "me":
            if actor.user_id is None:
                raise InvalidFilter(
                    "assigned_to=me needs a signed-in user", parameter="assigned_to"
                )
            assignee = actor.user_id
        else:
            try:
                assignee = uuid.UUID(value)
            except ValueError:
                raise InvalidFilter(
                    "assigned_to must be a user id, 'me' or 'none'", parameter="assigned_to"
                ) from None
    return LeadFilters(source=source, status=status, assignee_id=assignee, unassigned=unassigned)


async def period_for(
    session: AsyncSession, actor: Actor, date_from: date | None, date_to: date | None
) -> Period:
    """The period asked for, in the organisation's time zone."""
    tz = await timezone_of(session, actor.organization_id)
    return periods.resolve(date_from, date_to, timezone=tz, now=utcnow())


def _period_read(period: Period) -> PeriodRead:
    return PeriodRead(date_from=period.date_from, date_to=period.date_to, timezone=period.timezone)


def _whole_org(actor: Actor, filters: LeadFilters) -> bool:
    """Every live lead of the organisation counts: organisation scope and no filter (the
    queries can then leave out deleted leads instead of checking each lead)."""
    return scope_kind(actor) == "org" and filters == LeadFilters()


async def kpis(session: AsyncSession, actor: Actor, period: Period, filters: LeadFilters) -> Kpis:
    """The headline figures of the period."""
    now = utcnow()
    pipeline = await pipeline_of(session, actor.organization_id)
    won = pipeline.keys("won")
    conds = repository.lead_conditions(actor, filters)
    new, new_won = (await repository.cohort(session, conds, period, won)).get(None, (0, 0))
    whole_org = _whole_org(actor, filters)
    enrolled = (
        await repository.enrollments(
            session, conds, period, won, whole_org=actor.organization_id if whole_org else None
        )
    ).get(None, 0)
    open_probabilities = {s.key: s.probability for s in pipeline.stages if s.category == "open"}
    roll = await rollups.available(session, actor.organization_id, period.timezone, filters)
    if roll.by_stage:
        figures = await rollups.pipeline(session, actor, filters, open_probabilities)
        if roll.by_day:
            total = await rollups.created_between(session, actor, filters, None, period.date_to)
        else:
            total = await repository.count_leads(session, [*conds, Lead.created_at < period.end])
    else:
        total, figures = await repository.totals(session, conds, period.end, open_probabilities)
    count, weighted_count, value, weighted_value = figures
    median, responses = (await repository.median_response(session, conds, period)).get(
        None, (None, 0)
    )
    ended, in_time = (await repository.sla_outcomes(session, conds, period, now)).get(None, (0, 0))
    return Kpis(
        period=_period_read(period),
        total_leads=total,
        new_leads=new,
        enrollments=enrolled,
        new_leads_enrolled=new_won,
        conversion_rate=rate(new_won, new),
        active_pipeline=ActivePipeline(
            leads=count,
            weighted_leads=round(weighted_count, 2),
            value=round(value, 2),
            weighted_value=round(weighted_value, 2),
        ),
        median_first_response_minutes=None if median is None else round(median, 2),
        responses=responses,
        sla_compliance_rate=rate(in_time, ended),
        sla_clocks_ended=ended,
        sla_met_in_time=in_time,
    )


async def lead_volume(
    session: AsyncSession,
    actor: Actor,
    period: Period,
    filters: LeadFilters,
    granularity: Granularity,
) -> list[VolumePoint]:
    """Leads created per day, ISO week or month of the period; empty buckets hold 0."""
    roll = await rollups.available(session, actor.organization_id, period.timezone, filters)
    if roll.by_day:
        per_day = await rollups.created_per_day(
            session, actor, filters, period.date_from, period.date_to
        )
    else:
        conds = repository.lead_conditions(actor, filters)
        per_day = await repository.created_per_day(session, conds, period)
    return [VolumePoint(date=day, count=n) for day, n in periods.fold(per_day, period, granularity)]


async def funnel(
    session: AsyncSession, actor: Actor, period: Period, filters: LeadFilters
) -> list[FunnelStage]:
    """How far the leads created in the period got, stage by stage (open and won stages)."""
    pipeline = await pipeline_of(session, actor.organization_id)
    steps = [s for s in pipeline.stages if s.category != "lost"]
    if not steps:
        return []
    conds = repository.lead_conditions(actor, filters)
    # How far each lead got: the furthest (non-lost) stage it has been in, in today's order.
    position = {s.key: s.position for s in steps}
    furthest: dict[int, int] = {}
    reached = await repository.stages_reached(session, conds, period)
    for (keys, status), n in reached.items():
        been = [position[k] for k in reached_keys(keys) | {status} if k in position]
        if been:
            furthest[max(been)] = furthest.get(max(been), 0) + n
    size = sum(reached.values())
    out: list[FunnelStage] = []
    previous = size
    for i, stage in enumerate(steps):
        # Every lead enters at the top; further down, a lead counts at each stage up to the
        # furthest it reached (skipped stages count as passed).
        count = size if i == 0 else sum(n for pos, n in furthest.items() if pos >= stage.position)
        out.append(
            FunnelStage(
                stage=stage.key,
                name=stage.name,
                category=stage.category,
                count=count,
                percentage=rate(count, size),
                drop_off_rate=rate(previous - count, previous) if i else 0.0,
            )
        )
        previous = count
    return out


async def conversion_by_source(
    session: AsyncSession, actor: Actor, period: Period, filters: LeadFilters
) -> list[SourceConversion]:
    """The period's new leads per source and how many of them were won, most leads first."""
    pipeline = await pipeline_of(session, actor.organization_id)
    conds = repository.lead_conditions(actor, filters)
    rows = await repository.cohort(
        session,
        conds,
        period,
        pipeline.keys("won"),
        key=repository.BY_SOURCE,
    )
    items = [
        SourceConversion(source=source, total_leads=n, enrolled=won, conversion_rate=rate(won, n))
        for source, (n, won) in rows.items()
    ]
    return sorted(items, key=lambda s: (-s.total_leads, s.source is None, s.source or ""))


async def counselor_performance(
    session: AsyncSession, actor: Actor, period: Period, filters: LeadFilters
) -> list[CounselorStats]:
    """Per assignee: the period's new leads, interactions, enrollments, conversion, median
    response and SLA breaches; one row for every active user in scope, zeros included."""
    now = utcnow()
    pipeline = await pipeline_of(session, actor.organization_id)
    won = pipeline.keys("won")
    conds = repository.lead_conditions(actor, filters)
    by = repository.BY_ASSIGNEE
    leads = await repository.cohort(session, conds, period, won, key=by)
    enrolled = await repository.enrollments(session, conds, period, won, key=by)
    medians = await repository.median_response(session, conds, period, key=by)
    sla = await repository.sla_outcomes(session, conds, period, now, key=by)
    scope: Any = and_(*conds)
    if filters == LeadFilters():  # the scope alone decides which leads count
        scope = None if _whole_org(actor, filters) else repository.scope_lead_ids(actor)
    interactions = await repository.interactions_by_actor(
        session, actor.organization_id, scope, period
    )
    ids = {
        uid
        for figures in (leads, enrolled, medians, sla, interactions)
        for uid in figures
        if uid is not None
    }
    out = []
    for uid, name, _capacity in await repository.people(session, actor, ids):
        n, n_won = leads.get(uid, (0, 0))
        median = medians.get(uid)
        ended, in_time = sla.get(uid, (0, 0))
        out.append(
            CounselorStats(
                user_id=uid,
                full_name=name,
                leads=n,
                interactions=interactions.get(uid, 0),
                enrollments=enrolled.get(uid, 0),
                conversion_rate=rate(n_won, n),
                median_response_minutes=None if median is None else round(median[0], 2),
                sla_breaches=ended - in_time,
            )
        )
    return out


_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


async def alerts(session: AsyncSession, actor: Actor, limit: int) -> list[Alert]:
    """What needs attention now, most severe first, newest first within a severity."""
    now = utcnow()
    out: list[Alert] = []
    for lead_id, name, deadline, _ in await repository.sla_alert_leads(
        session, actor, "breached", now, limit
    ):
        out.append(
            Alert(
                type="sla_breached",
                severity="critical",
                title=f"SLA breached: {name or 'Lead'}",
                description=f"No response by the deadline {deadline.isoformat()}",
                link=f"/api/v1/leads/{lead_id}",
                created_at=deadline,
            )
        )
    for lead_id, name, deadline, reminder in await repository.sla_alert_leads(
        session, actor, "at_risk", now, limit
    ):
        out.append(
            Alert(
                type="sla_at_risk",
                severity="warning",
                title=f"SLA at risk: {name or 'Lead'}",
                description=f"Respond before {deadline.isoformat()}",
                link=f"/api/v1/leads/{lead_id}",
                created_at=reminder or deadline,
            )
        )
    days = (await org_settings(session, actor.organization_id)).untouched_alert_days
    pipeline = await pipeline_of(session, actor.organization_id)
    for lead_id, name, touched in await repository.untouched_leads(
        session, actor, pipeline.keys("open"), now - timedelta(days=days), limit
    ):
        out.append(
            Alert(
                type="lead_untouched",
                severity="info",
                title=f"Untouched for {days} days: {name or 'Lead'}",
                description=f"No contact since {touched.isoformat()}",
                link=f"/api/v1/leads/{lead_id}",
                created_at=touched + timedelta(days=days),
            )
        )
    if actor.can("admin:settings"):  # deliveries are the organisation's, not a lead's
        failed = await repository.failed_deliveries(session, actor.organization_id, limit)
        out.extend(_delivery_alert(row) for row in failed)
    for batch in await imports_repository.failed_batches(session, actor, limit):
        out.append(
            Alert(
                type="import_failed",
                severity="warning",
                title=f"Import failed: {batch.filename or batch.id}",
                description=batch.failure or "The import stopped",
                link=f"/api/v1/imports/{batch.id}",
                created_at=batch.finished_at or batch.updated_at,
            )
        )
    out.sort(key=lambda a: (_SEVERITY_RANK[a.severity], -a.created_at.timestamp()))
    return out[:limit]


def _delivery_alert(row: OutboxMessage) -> Alert:
    email = row.kind == "email"
    what = f"email to {row.payload.get('to', '?')}" if email else f"job {row.kind}"
    return Alert(
        type="email_failed" if email else "job_failed",
        severity="warning",
        title=f"Delivery failed: {what}",
        description=(row.last_error or "failed")[:300],
        link=f"/api/v1/admin/{'emails' if email else 'jobs'}?status=failed",
        created_at=row.next_attempt_at,
    )
