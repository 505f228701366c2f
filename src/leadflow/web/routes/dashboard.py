"""The dashboard at `/`: KPI cards, funnel, lead volume, leads per assignee, alerts, and
"my day" (my tasks due, my SLA clocks, my needs-action leads)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from leadflow.analytics import dashboard, service
from leadflow.analytics.schemas import LeadFilters
from leadflow.authz.actor import Actor
from leadflow.authz.permissions import RowScope
from leadflow.db.session import SessionDep
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.leads import service as leads
from leadflow.sla import service as sla
from leadflow.tasks import service as tasks
from leadflow.tasks.repository import TaskFilter
from leadflow.web.session import WebActor
from leadflow.web.templating import load_shell, render

router = APIRouter(include_in_schema=False)

ALERTS_SHOWN = 10
MY_DAY_SHOWN = 8
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
    if actor.user_id is not None:
        # An actor who sees only their own leads already has their needs-action list.
        own = context.get("needs_action") if actor.row_scope is RowScope.OWN else None
        context["my_day"] = await my_day(session, actor, own)
    return render(request, "dashboard.html", context)


async def my_day(session: AsyncSession, actor: Actor, needs_action: Any = None) -> dict[str, Any]:
    """The signed-in person's own work: open tasks due within a day (overdue included), the
    SLA clocks and needs-action leads of their own leads (assigned to or created by them)."""
    # The actor narrowed to their own rows: the same services, never a wider scope.
    mine = replace(actor, row_scope=RowScope.OWN)
    out: dict[str, Any] = {"tasks": None, "sla": None, "needs_action": None}
    if actor.can("tasks:read"):
        due = TaskFilter(
            assigned_to=actor.user_id, status="open", due_before=utcnow() + timedelta(days=1)
        )
        rows, total = await tasks.list_tasks(
            session, actor, due, PageParams(limit=MY_DAY_SHOWN, offset=0)
        )
        out["tasks"] = {"items": [tasks.to_read(t) for t in rows], "total": total}
    if actor.can("leads:read"):
        clocks: list[tuple[str, Any]] = []
        for state in ("breached", "at_risk", "running"):
            found, _ = await sla.leads_in_state(
                session, mine, state, PageParams(limit=MY_DAY_SHOWN, offset=0)
            )
            clocks.extend((state, lead) for lead in found)
        out["sla"] = clocks[:MY_DAY_SHOWN]
        if needs_action is None:
            needs_action = await leads.needing_action(session, mine, MY_DAY_SHOWN)
        out["needs_action"] = needs_action
    return out
