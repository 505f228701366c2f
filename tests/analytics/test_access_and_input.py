"""Who may read analytics, and what bad parameters answer: 401 without credentials, 403
without `analytics:read`, 422 problem+json naming the parameter for bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock
from leadflow.models.role import Role
from tests.fixtures.factories import Factory

PATHS = [
    "/api/v1/analytics/kpis",
    "/api/v1/analytics/lead-volume",
    "/api/v1/analytics/funnel",
    "/api/v1/analytics/conversion-by-source",
    "/api/v1/analytics/counselor-performance",
    "/api/v1/analytics/alerts",
    "/api/v1/dashboard/metrics",
    "/api/v1/dashboard/leads-per-assignee",
    "/api/dashboard/metrics",
    "/api/dashboard/leads-per-assignee",
]


@pytest.mark.parametrize("path", PATHS)
async def test_needs_credentials_and_the_permission(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, path: str
) -> None:
    org = await factory.org()
    session.add(
        Role(
            organization_id=org.id,
            name="caller",
            permissions=["leads:read"],
            row_scope="org",
            is_system=False,
        )
    )
    await session.commit()
    caller = await factory.member(org, "caller")
    assert (await client.get(path)).status_code == 401
    r = await client.get(path, headers=caller.headers)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "missing_permission"
    assert r.json()["permission"] == "analytics:read"
    viewer = await factory.member(org, "viewer")
    assert (await client.get(path, headers=viewer.headers)).status_code == 200


@pytest.mark.parametrize(
    ("params", "code", "parameter"),
    [
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "invalid_period", "date_from"),
        ({"date_from": "2010-01-01", "date_to": "2026-01-01"}, "invalid_period", "date_to"),
        ({"date_from": "0001-01-01", "date_to": "0001-01-02"}, "invalid_period", "date_from"),
        ({"date_to": "9999-12-31"}, "invalid_period", "date_to"),
        ({"date_from": "2026-02-30"}, "validation_error", "date_from"),
        ({"date_from": "gestern"}, "validation_error", "date_from"),
        ({"assigned_to": "jemand"}, "invalid_filter", "assigned_to"),
        ({"granularity": "year"}, "validation_error", "granularity"),
        ({"source": "x" * 121}, "validation_error", "source"),
    ],
)
async def test_bad_parameters_are_422(
    client: httpx.AsyncClient, factory: Factory, params: dict[str, str], code: str, parameter: str
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.get("/api/v1/analytics/lead-volume", headers=admin.headers, params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code
    assert body["errors"][0]["loc"] == ["query", parameter]


async def test_alerts_limit_is_bounded(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    for limit in (0, 501):
        r = await client.get(
            "/api/v1/analytics/alerts", headers=admin.headers, params={"limit": limit}
        )
        assert r.status_code == 422, r.text


async def test_an_unknown_status_or_user_counts_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await factory.lead(org, source="web")
    r = await client.get(
        "/api/v1/analytics/kpis",
        headers=admin.headers,
        params={"status": "nirgends", "assigned_to": "00000000-0000-0000-0000-000000000000"},
    )
    assert r.status_code == 200 and r.json()["total_leads"] == 0


async def test_a_met_clock_without_an_assignment_row_has_no_response_time(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """Rows written before assignments were recorded: the clock counts for SLA compliance,
    but without a start it has no response time (and does not break the median)."""
    clock.freeze(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    org = await factory.org()
    admin = await factory.member(org)
    await factory.lead(
        org,
        assignee_id=admin.user.id,
        created_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        sla_deadline=datetime(2026, 3, 2, 11, 0, tzinfo=UTC),
        sla_met_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    )
    params = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    r = await client.get("/api/v1/analytics/kpis", headers=admin.headers, params=params)
    body = r.json()
    assert (body["median_first_response_minutes"], body["responses"]) == (None, 0)
    assert (body["sla_clocks_ended"], body["sla_compliance_rate"]) == (1, 100.0)
    r = await client.get(
        "/api/v1/analytics/counselor-performance", headers=admin.headers, params=params
    )
    assert [(row["leads"], row["median_response_minutes"]) for row in r.json()] == [(1, None)]


async def test_a_pipeline_without_won_or_open_stages(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """Every stage lost: nothing can be won or open, and every figure still answers."""
    org = await factory.org()
    admin = await factory.member(org)
    await factory.lead(org, source="web", status="lost")
    stages = (await client.get("/api/v1/pipeline/stages", headers=admin.headers)).json()
    for stage in stages:
        r = await client.patch(
            f"/api/v1/pipeline/stages/{stage['id']}",
            headers=admin.headers,
            json={"category": "lost"},
        )
        assert r.status_code == 200, r.text
    kpis = (await client.get("/api/v1/analytics/kpis", headers=admin.headers)).json()
    assert (kpis["new_leads"], kpis["enrollments"], kpis["new_leads_enrolled"]) == (1, 0, 0)
    assert kpis["active_pipeline"]["leads"] == 0
    assert (await client.get("/api/v1/analytics/funnel", headers=admin.headers)).json() == []
    sources = await client.get("/api/v1/analytics/conversion-by-source", headers=admin.headers)
    assert sources.json() == [
        {"source": "web", "total_leads": 1, "enrolled": 0, "conversion_rate": 0.0}
    ]
    loads = await client.get("/api/v1/dashboard/leads-per-assignee", headers=admin.headers)
    assert [(row["open"], row["won"]) for row in loads.json()] == [(0, 0)]
    alerts = await client.get("/api/v1/analytics/alerts", headers=admin.headers)
    assert alerts.json() == []
