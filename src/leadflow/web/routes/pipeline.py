"""The pipeline board: a column per stage with its count and value, paged per column; cards move
between columns (drag and drop, or the card's stage menu) through the leads service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from leadflow.analytics import dashboard
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.exceptions import NotFound
from leadflow.leads import service as leads
from leadflow.leads.schemas import LeadFilter
from leadflow.pipeline import service as pipeline
from leadflow.web.session import WebActor
from leadflow.web.templating import load_shell, render

router = APIRouter(prefix="/crm/pipeline", include_in_schema=False)

COLUMN_SIZE = 20
# Keyset order of a column: most recently changed first (non-null column, so cursors work).
COLUMN_SORT = "-updated_at"


async def _column(
    request: Request, session: AsyncSession, actor: Actor, stage: str, cursor: str | None
) -> dict[str, Any]:
    res = await leads.list_leads(
        session,
        actor,
        request.app.state.settings,
        LeadFilter(status=[stage]),
        sort=COLUMN_SORT,
        limit=COLUMN_SIZE,
        offset=0,
        cursor=cursor,
    )
    return {"cards": res.items, "next_cursor": res.next_cursor, "stage_key": stage}


@router.get("")
async def board(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """Every stage as a column: its count in the actor's scope and its first cards."""
    actor.require("leads:read")
    await load_shell(request, session, actor)
    stages = await pipeline.list_stages(session, actor)
    # Counts and Σ value per column from the analytics (a rollup on PostgreSQL), not a count
    # of every lead on each view of the board.
    heads = await dashboard.stage_values(session, actor)
    columns = []
    for stage in stages:
        count, value = heads.get(stage.key, (0, 0.0))
        column = await _column(request, session, actor, stage.key, None)
        columns.append({"stage": stage, "count": count, "value": value, **column})
    return render(
        request,
        "pipeline.html",
        {"columns": columns, "stages": stages, "may_move": actor.can("leads:write")},
    )


@router.get("/{stage}")
async def column_page(
    request: Request,
    session: SessionDep,
    actor: WebActor,
    stage: str,
    cursor: str | None = None,
) -> Response:
    """The next cards of one column (htmx "load more")."""
    actor.require("leads:read")
    stages = await pipeline.list_stages(session, actor)
    if stage not in {s.key for s in stages}:
        raise NotFound("No such stage")
    column = await _column(request, session, actor, stage, cursor)
    return render(
        request,
        "_cards.html",
        {**column, "stages": stages, "may_move": actor.can("leads:write")},
    )
