"""/api/v1/analytics/* and /api/v1/dashboard/* (alias /api/dashboard/*)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.analytics import dashboard, service
from leadflow.analytics.periods import Granularity, Period
from leadflow.analytics.schemas import (
    Alert,
    AssigneeLoad,
    CounselorStats,
    DashboardMetrics,
    FunnelStage,
    Kpis,
    LeadFilters,
    SourceConversion,
    VolumePoint,
)
from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep

router = APIRouter(tags=["analytics"])
dashboard_router = APIRouter(tags=["analytics"])
Reader = Annotated[Actor, Depends(require_permission("analytics:read"))]


@dataclass(frozen=True, slots=True)
class AnalyticsRequest:
    """The caller, the session, the period and the lead filters of one analytics request."""

    session: AsyncSession
    actor: Actor
    period: Period
    filters: LeadFilters


async def analytics_query(
    session: SessionDep,
    actor: Reader,
    date_from: Annotated[
        date | None, Query(description="First day (organisation's time zone), inclusive")
    ] = None,
    date_to: Annotated[
        date | None, Query(description="Last day (organisation's time zone), inclusive")
    ] = None,
    source: Annotated[str | None, Query(max_length=120)] = None,
    status: Annotated[str | None, Query(max_length=40, description="Current stage key")] = None,
    assigned_to: Annotated[
        str | None, Query(max_length=40, description="User id, `me` or `none`")
    ] = None,
) -> AnalyticsRequest:
    """Period (default: the last 30 days up to today) and filters of an analytics request."""
    filters = service.lead_filters(actor, source=source, status=status, assigned_to=assigned_to)
    period = await service.period_for(session, actor, date_from, date_to)
    return AnalyticsRequest(session, actor, period, filters)


Asked = Annotated[AnalyticsRequest, Depends(analytics_query)]


@router.get("/kpis", response_model=Kpis)
async def kpis(q: Asked) -> Kpis:
    """Total and new leads, enrollments, conversion, active pipeline, response time, SLA."""
    return await service.kpis(q.session, q.actor, q.period, q.filters)


@router.get("/lead-volume", response_model=list[VolumePoint])
async def lead_volume(q: Asked, granularity: Granularity = "day") -> list[VolumePoint]:
    """Leads created per day, ISO week (Monday) or month; every bucket present, 0 if empty."""
    return await service.lead_volume(q.session, q.actor, q.period, q.filters, granularity)


@router.get("/funnel", response_model=list[FunnelStage])
async def funnel(q: Asked) -> list[FunnelStage]:
    """The period's new leads by the furthest stage they reached, in pipeline order."""
    return await service.funnel(q.session, q.actor, q.period, q.filters)


@router.get("/conversion-by-source", response_model=list[SourceConversion])
async def conversion_by_source(q: Asked) -> list[SourceConversion]:
    """The period's new leads per source and how many of them were won."""
    return await service.conversion_by_source(q.session, q.actor, q.period, q.filters)


@router.get("/counselor-performance", response_model=list[CounselorStats])
async def counselor_performance(q: Asked) -> list[CounselorStats]:
    """Per assignee: leads, interactions, enrollments, conversion, response time, breaches."""
    return await service.counselor_performance(q.session, q.actor, q.period, q.filters)


@router.get("/alerts", response_model=list[Alert])
async def alerts(
    session: SessionDep,
    actor: Reader,
    limit: Annotated[int, Query(ge=1, le=service.MAX_ALERTS)] = 100,
) -> list[Alert]:
    """SLA breached and at risk, untouched leads, failed deliveries and imports, now."""
    return await service.alerts(session, actor, limit)


@dashboard_router.get("/metrics", response_model=DashboardMetrics)
async def metrics(session: SessionDep, actor: Reader) -> DashboardMetrics:
    """Leads by status, assigned/unassigned, new today and this week, SLA at risk/breached."""
    return await dashboard.metrics(session, actor)


@dashboard_router.get("/leads-per-assignee", response_model=list[AssigneeLoad])
async def leads_per_assignee(session: SessionDep, actor: Reader) -> list[AssigneeLoad]:
    """Per assignee: open, won and SLA-breached leads, and the load against capacity."""
    return await dashboard.leads_per_assignee(session, actor)
