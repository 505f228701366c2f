"""GET /health, /health/ready and /api/v1/health."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from sqlalchemy import text

from leadflow.db.engine import Database
from leadflow.health.errors import DatabaseUnavailable

router = APIRouter(tags=["health"])


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
