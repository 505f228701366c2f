"""Concurrent lead creations on PostgreSQL never take the same round-robin slot twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx

from leadflow.app import create_app
from leadflow.auth.service import start_session
from leadflow.config import Settings
from leadflow.db.engine import Database, session_scope
from leadflow.models.assignment_rule import AssignmentRule
from leadflow.models.user import User
from leadflow.organizations import repository as org_repo
from leadflow.organizations.service import create_organization
from tests.fixtures.factories import _PASSWORD_HASH

REPS = 4
PER_REP = 6


async def test_concurrent_creations_spread_evenly(committed_pg: Database, tmp_path: Path) -> None:
    settings = Settings(
        env="test", database_url=committed_pg.url, secret_key="rr-" + "x" * 40, data_dir=tmp_path
    )
    async with session_scope(committed_pg) as session:
        org = await create_organization(session, name="Round Robin KG")
        admin_role = await org_repo.get_role_by_name(session, org.id, "admin")
        rep_role = await org_repo.get_role_by_name(session, org.id, "counselor")
        assert admin_role is not None and rep_role is not None
        admin = User(
            organization_id=org.id,
            email="rr-admin@example.com",
            full_name="Admin",
            password_hash=_PASSWORD_HASH,
            role_id=admin_role.id,
            status="active",
        )
        admin.role = admin_role
        reps = [
            User(
                organization_id=org.id,
                email=f"rr{i}@example.com",
                full_name=f"Rep {i}",
                password_hash=_PASSWORD_HASH,
                role_id=rep_role.id,
                status="active",
            )
            for i in range(REPS)
        ]
        session.add_all([admin, *reps])
        await session.flush()
        session.add(
            AssignmentRule(
                organization_id=org.id,
                name="all",
                position=0,
                is_active=True,
                conditions={},
                strategy="round_robin",
                user_ids=[str(r.id) for r in reps],
                rr_counter=0,
            )
        )
        token = (await start_session(session, settings, admin)).access_token
        rep_ids = {str(r.id) for r in reps}
    app = create_app(settings, database=committed_pg)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://rr"
    ) as client:

        async def create(i: int) -> str:
            r = await client.post(
                "/api/v1/leads",
                headers=headers,
                json={"first_name": f"Lead {i}", "email": f"rr-lead-{i}@example.com"},
            )
            assert r.status_code == 201, r.text
            return str(r.json()["assignee_id"])

        assignees = await asyncio.gather(*(create(i) for i in range(REPS * PER_REP)))
    spread = Counter(assignees)
    assert set(spread) == rep_ids
    assert set(spread.values()) == {PER_REP}, spread
