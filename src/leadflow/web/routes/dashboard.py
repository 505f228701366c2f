"""The dashboard at `/`: KPI cards, funnel, lead volume, leads per assignee, alerts, my day."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadflow.analytics import dashboard, service
from leadflow.analytics.schemas import LeadFilters
from leadflow.db.session import SessionDep
from leadflow.leads import service as leads
from leadflow.web.session import WebActor
from leadflow.web.templating import load_shell, render

router = APIRouter(include_in_schema=False)

ALERTS_SHOWN = 10
NEEDS_ACTION_SHOWN = 8


@router.get("/")
async def dashboard_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """The signed-in person's start page (analytics within their row scope)."""
    await load_shell(request, session, actor)
    context: dict[str, object] = {"analytics": actor.can("analytics:read")}
    if actor.can("analytics:read"):
        period = await service.period_for(session, actor, None, None)
        filters = LeadFilters()
        volume = await service.lead_volume(session, actor, period, filters, "day")
        context.update(
            metrics=await dashboard.metrics(session, actor),
            kpis=await service.kpis(session, actor, period, filters),
            funnel=await service.funnel(session, actor, period, filters),
            volume=volume,
            volume_json=json.dumps(
                {
                    "labels": [p.date.isoformat() for p in volume],
                    "counts": [p.count for p in volume],
                }
            ),
            per_assignee=await dashboard.leads_per_assignee(session, actor),
            alerts=await service.alerts(session, actor, ALERTS_SHOWN),
        )
    if actor.can("leads:read"):
        context["needs_action"] = await leads.needing_action(session, actor, NEEDS_ACTION_SHOWN)
    return render(request, "dashboard.html", context)
