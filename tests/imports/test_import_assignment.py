"""Leads an import assigns (by rule or by `assignee_id`) get what an API assignment gives them:
an assignment history row and a running SLA clock; unassigned leads get neither."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadAssignment
from tests.fixtures.factories import Factory

CSV = "Name,E-Mail,Quelle\nAda Rule,ada@example.com,website\nBob Rule,bob@example.com,fair\n"


@pytest.mark.parametrize("how", ["assignee_id", "rule", "none"])
async def test_imported_assignments_have_history_and_an_sla_clock(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, how: str
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    url = "/api/v1/leads/import?analyze=false"
    if how == "assignee_id":
        url += f"&assignee_id={rep.id}"
    if how == "rule":
        r = await client.post(
            "/api/v1/assignment/rules",
            headers=admin.headers,
            json={"name": "all", "strategy": "fixed_user", "fixed_user_id": str(rep.id)},
        )
        assert r.status_code == 201, r.text
    r = await client.post(
        url, content=CSV.encode(), headers={**admin.headers, "Content-Type": "text/csv"}
    )
    assert r.status_code == 200 and r.json()["imported_count"] == 2, r.text

    leads = (await session.scalars(select(Lead).where(Lead.organization_id == org.id))).all()
    history = (
        await session.scalars(
            select(LeadAssignment).where(LeadAssignment.lead_id.in_([lead.id for lead in leads]))
        )
    ).all()
    if how == "none":
        assert all(lead.assignee_id is None and lead.sla_deadline is None for lead in leads)
        assert history == []
        return
    assert all(lead.assignee_id == rep.id for lead in leads)
    assert all(lead.sla_deadline is not None for lead in leads)
    assert all(lead.sla_deadline > lead.created_at for lead in leads)  # type: ignore[operator]
    assert sorted(h.lead_id for h in history) == sorted(lead.id for lead in leads)
    assert all(h.to_user_id == rep.id and h.from_user_id is None for h in history)
    assert all((h.rule_id is not None) == (how == "rule") for h in history)
