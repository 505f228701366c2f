"""GET /health, /health/ready and /api/v1/health; the operator's system health at
/api/v1/admin/health and /api/v1/admin/health/metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import text

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.db.session import SessionDep
from leadflow.health import service
from leadflow.health.errors import DatabaseUnavailable
from leadflow.health.schemas import HealthRead, MetricSeries, MetricType
from leadflow.kit.clock import utcnow
from leadflow.worker.jobs import get_queue

router = APIRouter(tags=["health"])
admin_router = APIRouter(tags=["admin"])
Admin = Annotated[Actor, Depends(require_permission("admin:settings"))]


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _ready(request: Request) -> dict[str, str]:
    db: Database = request.app.state.database
    try:
        async with asyncio.timeout(3):
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise DatabaseUnavailable("Database is not reachable") from exc
    return {"status": "ok", "database": db.dialect}


@router.get("/health/ready")
async def ready(request: Request) -> dict[str, str]:
    """The process can serve: the database answers (503 problem+json otherwise)."""
    return await _ready(request)


@router.get("/api/v1/health")
async def api_health(request: Request) -> dict[str, str]:
    """Same as `/health/ready`."""
    return await _ready(request)


async def operator(request: Request, session: SessionDep, actor: Admin) -> Actor:
    """An admin (`admin:settings`) of the operator's organisation; 403 `operator_only` else."""
    await service.require_operator(session, request.app.state.settings, actor)
    return actor


Operator = Annotated[Actor, Depends(operator)]


@admin_router.get("", response_model=HealthRead)
async def system_health(request: Request, session: SessionDep, _: Operator) -> HealthRead:
    """Database, job queue, worker heartbeats, failed jobs, email and webhook backlog, and
    request rate and p95 latency per route group over the last five complete minutes."""
    settings: Settings = request.app.state.settings
    return await service.overview(session, settings=settings, queue=get_queue(), now=utcnow())


@admin_router.get("/metrics", response_model=MetricSeries)
async def health_metrics(
    request: Request,
    session: SessionDep,
    _: Operator,
    metric_type: MetricType,
    time_range: Annotated[
        str, Query(max_length=20, description="`<n>m`, `<n>h` or `<n>d`, 5m to 30d")
    ] = "24h",
) -> MetricSeries:
    """A time series for charts, from the minute samples (request metrics per route group)."""
    settings: Settings = request.app.state.settings
    return await service.series(
        session, settings=settings, metric=metric_type, time_range=time_range, now=utcnow()
    )
