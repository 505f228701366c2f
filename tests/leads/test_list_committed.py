"""The lead list against a database that really commits, as in production: read-only
requests run their reads without a transaction and leave none open behind them."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import text

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db.engine import Database
from tests.fixtures.factories import Factory


async def test_reads_and_writes_on_a_committing_database(
    committed_pg: Database, tmp_path: Path
) -> None:
    settings = Settings(
        env="test", database_url=committed_pg.url, secret_key="e2e-" + "x" * 40, data_dir=tmp_path
    )
    async with committed_pg.sessionmaker() as session:
        factory = Factory(session, settings)
        org, other = await factory.org(), await factory.org()
        admin = await factory.member(org)
        for first in ("Anna", "Bert"):
            await factory.lead(org, first_name=first, last_name="Kramer", status="won")
        await factory.lead(org, first_name="Carl", last_name="Schulz", status="new")
        await factory.lead(other, first_name="Dora", last_name="Kramer", status="won")
    app = create_app(settings, database=committed_pg)
    h = admin.headers
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://e2e"
    ) as c:

        async def names(**params: object) -> list[str]:
            r = await c.get("/api/v1/leads", headers=h, params=params)  # type: ignore[arg-type]
            assert r.status_code == 200, r.text
            return sorted(i["first_name"] for i in r.json()["items"])

        assert await names(q="kramer") == ["Anna", "Bert"]
        assert await names(status="won") == ["Anna", "Bert"]
        assert await names(limit=1, offset=2) != []
        created = await c.post(
            "/api/v1/leads",
            headers=h,
            json={"first_name": "Eva", "last_name": "Kramer", "email": "eva@kramer.example"},
        )
        assert created.status_code == 201, created.text
        assert await names(q="kramer") == ["Anna", "Bert", "Eva"]
        assert (
            await c.get("/api/v1/leads", headers={"Authorization": "Bearer nope"})
        ).status_code == 401
    async with committed_pg.engine.connect() as conn:
        open_txns = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'"
            )
        )
    assert open_txns == 0
