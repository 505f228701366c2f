"""KPIs, lead volume, funnel, conversion by source and counselor performance: exact figures
of the organisation in `world.py`, for each role's scope, on both engines."""

from __future__ import annotations

from typing import Any

import httpx

from tests.analytics.world import MARCH, build, by_user
from tests.fixtures.factories import Factory

KPIS = "/api/v1/analytics/kpis"
VOLUME = "/api/v1/analytics/lead-volume"
FUNNEL = "/api/v1/analytics/funnel"
SOURCES = "/api/v1/analytics/conversion-by-source"
COUNSELORS = "/api/v1/analytics/counselor-performance"


def _kpis(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "period"}


async def test_admin_kpis_for_march(client: httpx.AsyncClient, factory: Factory) -> None:
    w = await build(client, factory)
    body = await w.get("admin", KPIS, **MARCH)
    assert body["period"] == {
        "date_from": "2026-03-01",
        "date_to": "2026-03-31",
        "timezone": "Europe/Berlin",
    }
    assert _kpis(body) == {
        # L0 (Sun 03-01 00:30 local, still February in UTC) … L5; not L6 (04-01 local).
        "total_leads": 6,
        "new_leads": 6,
        "enrollments": 1,  # L1 on 03-10; L2 was won in April
        "new_leads_enrolled": 2,  # L1 and L2 (by now)
        "conversion_rate": 33.33,
        # Now: L0 L4 L6 L7 L8 L9 new (10 %), L3 proposal (60 %); L5 lost.
        "active_pipeline": {
            "leads": 7,
            "weighted_leads": 1.2,
            "value": 2500.0,  # L3 2000 + L6 500
            "weighted_value": 1250.0,  # 2000 × 0.6 + 500 × 0.1
        },
        "median_first_response_minutes": 1920.0,  # of 60 (L1), 1920 (L2), 2130 (L3)
        "responses": 3,
        "sla_compliance_rate": 50.0,  # L1, L2 in time; L3 late, L4 never
        "sla_clocks_ended": 4,
        "sla_met_in_time": 2,
    }


async def test_scopes_counselor_manager_and_other_org(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    w = await build(client, factory)
    # The manager's team is c1 and c2: L1, L2 and L3 (and L9, created in April).
    assert _kpis(await w.get("manager", KPIS, **MARCH)) == {
        "total_leads": 3,
        "new_leads": 3,
        "enrollments": 1,
        "new_leads_enrolled": 2,
        "conversion_rate": 66.67,
        "active_pipeline": {
            "leads": 2,  # L3 proposal, L9 new
            "weighted_leads": 0.7,
            "value": 2000.0,
            "weighted_value": 1200.0,
        },
        "median_first_response_minutes": 1920.0,
        "responses": 3,
        "sla_compliance_rate": 66.67,
        "sla_clocks_ended": 3,
        "sla_met_in_time": 2,
    }
    # A counselor sees the leads assigned to them (or created by them): L1, L2, L9.
    assert _kpis(await w.get("c1", KPIS, **MARCH)) == {
        "total_leads": 2,
        "new_leads": 2,
        "enrollments": 1,
        "new_leads_enrolled": 2,
        "conversion_rate": 100.0,
        "active_pipeline": {
            "leads": 1,
            "weighted_leads": 0.1,
            "value": 0.0,
            "weighted_value": 0.0,
        },
        "median_first_response_minutes": 990.0,  # of 60 and 1920
        "responses": 2,
        "sla_compliance_rate": 100.0,
        "sla_clocks_ended": 2,
        "sla_met_in_time": 2,
    }
    # The other organisation counts its own lead only.
    other = _kpis(await w.get("other", KPIS, **MARCH))
    assert (other["total_leads"], other["new_leads"], other["enrollments"]) == (1, 1, 1)
    assert other["active_pipeline"]["leads"] == 0
    assert await w.get("other", SOURCES, **MARCH) == [
        {"source": "web", "total_leads": 1, "enrolled": 1, "conversion_rate": 100.0}
    ]


async def test_filters(client: httpx.AsyncClient, factory: Factory) -> None:
    w = await build(client, factory)
    web = _kpis(await w.get("admin", KPIS, **MARCH, source="web"))
    assert (web["total_leads"], web["new_leads"], web["enrollments"]) == (3, 3, 1)
    assert (web["new_leads_enrolled"], web["conversion_rate"]) == (2, 66.67)
    assert web["active_pipeline"] == {  # L0 L6 L7 L8 L9, all new; L6 is worth 500
        "leads": 5,
        "weighted_leads": 0.5,
        "value": 500.0,
        "weighted_value": 50.0,
    }
    assert (web["median_first_response_minutes"], web["sla_compliance_rate"]) == (990.0, 100.0)

    c3 = _kpis(await w.get("admin", KPIS, **MARCH, assigned_to=w.uid("c3")))
    assert (c3["new_leads"], c3["sla_clocks_ended"], c3["sla_compliance_rate"]) == (1, 1, 0.0)
    assert c3["median_first_response_minutes"] is None and c3["responses"] == 0

    nobody = _kpis(await w.get("admin", KPIS, **MARCH, assigned_to="none"))
    assert (nobody["new_leads"], nobody["sla_clocks_ended"]) == (2, 0)  # L0, L5

    mine = _kpis(await w.get("c1", KPIS, **MARCH, assigned_to="me"))
    assert (mine["new_leads"], mine["enrollments"]) == (2, 1)

    won = _kpis(await w.get("admin", KPIS, **MARCH, status="won"))
    assert (won["new_leads"], won["enrollments"], won["conversion_rate"]) == (2, 1, 100.0)


async def test_april_and_an_empty_period(client: httpx.AsyncClient, factory: Factory) -> None:
    w = await build(client, factory)
    april = _kpis(await w.get("admin", KPIS, date_from="2026-04-01", date_to="2026-04-30"))
    assert (april["total_leads"], april["new_leads"]) == (10, 4)  # L6 L7 L8 L9
    assert (april["enrollments"], april["new_leads_enrolled"]) == (1, 0)  # L2 on 04-02
    assert april["sla_clocks_ended"] == 0  # L9's deadline lies ahead
    empty = _kpis(await w.get("admin", KPIS, date_from="2026-01-01", date_to="2026-01-31"))
    assert empty == {
        "total_leads": 0,
        "new_leads": 0,
        "enrollments": 0,
        "new_leads_enrolled": 0,
        "conversion_rate": 0.0,
        "active_pipeline": {  # now, whatever the period
            "leads": 7,
            "weighted_leads": 1.2,
            "value": 2500.0,
            "weighted_value": 1250.0,
        },
        "median_first_response_minutes": None,
        "responses": 0,
        "sla_compliance_rate": 0.0,
        "sla_clocks_ended": 0,
        "sla_met_in_time": 0,
    }
    assert await w.get("admin", FUNNEL, date_from="2026-01-01", date_to="2026-01-31") == [
        {"stage": key, "name": name, "category": cat, "count": 0, "percentage": 0.0,
         "drop_off_rate": 0.0}
        for key, name, cat in [
            ("new", "New", "open"),
            ("contacted", "Contacted", "open"),
            ("qualified", "Qualified", "open"),
            ("proposal", "Proposal", "open"),
            ("won", "Won", "won"),
        ]
    ]  # fmt: skip
    assert await w.get("admin", SOURCES, date_from="2026-01-01", date_to="2026-01-31") == []
    # Default period: the 30 days up to today (2026-03-12 … 2026-04-10, Berlin).
    default = await w.get("admin", KPIS)
    assert default["period"]["date_from"] == "2026-03-12"
    assert default["period"]["date_to"] == "2026-04-10"
    assert default["new_leads"] == 8  # L2 … L9


async def test_lead_volume_in_local_days_weeks_and_months(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    w = await build(client, factory)
    days = await w.get("admin", VOLUME, **MARCH, granularity="day")
    assert len(days) == 31 and days[0]["date"] == "2026-03-01" and days[-1]["date"] == "2026-03-31"
    assert {d["date"]: d["count"] for d in days if d["count"]} == {
        "2026-03-01": 1,  # L0: 02-28 23:30 UTC is Sunday 00:30 in Berlin
        "2026-03-02": 1,
        "2026-03-29": 2,  # L2 (03-28 23:30 UTC) and L3 (03-29 00:30 UTC, before the switch)
        "2026-03-30": 1,  # L4: 03-29 22:30 UTC is Monday 00:30 summer time
        "2026-03-31": 1,  # L5; L6 (03-31 22:30 UTC) is already April in Berlin
    }
    weeks = await w.get("admin", VOLUME, **MARCH, granularity="week")
    assert weeks == [  # ISO weeks from Monday; the first and last are partial
        {"date": "2026-02-23", "count": 1},
        {"date": "2026-03-02", "count": 1},
        {"date": "2026-03-09", "count": 0},
        {"date": "2026-03-16", "count": 0},
        {"date": "2026-03-23", "count": 2},
        {"date": "2026-03-30", "count": 2},  # L4 belongs to Monday's week, L5
    ]
    months = await w.get(
        "admin", VOLUME, date_from="2026-02-01", date_to="2026-04-30", granularity="month"
    )
    assert months == [
        {"date": "2026-02-01", "count": 0},
        {"date": "2026-03-01", "count": 6},
        {"date": "2026-04-01", "count": 4},
    ]
    empty = await w.get("admin", VOLUME, date_from="2026-01-05", date_to="2026-01-07")
    assert empty == [{"date": f"2026-01-0{d}", "count": 0} for d in (5, 6, 7)]
    mine = await w.get("c1", VOLUME, **MARCH, granularity="month")
    assert mine == [{"date": "2026-03-01", "count": 2}]


async def test_funnel_counts_passed_and_skipped_stages(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    w = await build(client, factory)
    funnel = await w.get("admin", FUNNEL, **MARCH)
    # L1 new→contacted→won, L2 new→qualified→won, L3 new→proposal; L0, L4 new; L5 new→lost.
    assert [(s["stage"], s["count"], s["percentage"], s["drop_off_rate"]) for s in funnel] == [
        ("new", 6, 100.0, 0.0),
        ("contacted", 3, 50.0, 50.0),
        ("qualified", 3, 50.0, 0.0),
        ("proposal", 3, 50.0, 0.0),
        ("won", 2, 33.33, 33.33),
    ]
    fair = await w.get("admin", FUNNEL, **MARCH, source="fair")
    assert [s["count"] for s in fair] == [2, 1, 1, 1, 0]  # L3 reached proposal, L4 stayed
    manager = await w.get("manager", FUNNEL, **MARCH)
    assert [s["count"] for s in manager] == [3, 3, 3, 3, 2]


async def test_conversion_by_source(client: httpx.AsyncClient, factory: Factory) -> None:
    w = await build(client, factory)
    assert await w.get("admin", SOURCES, **MARCH) == [
        {"source": "web", "total_leads": 3, "enrolled": 2, "conversion_rate": 66.67},
        {"source": "fair", "total_leads": 2, "enrolled": 0, "conversion_rate": 0.0},
        {"source": None, "total_leads": 1, "enrolled": 0, "conversion_rate": 0.0},
    ]
    assert await w.get("c2", SOURCES, **MARCH) == [
        {"source": "fair", "total_leads": 1, "enrolled": 0, "conversion_rate": 0.0}
    ]


ZERO = {
    "leads": 0,
    "interactions": 0,
    "enrollments": 0,
    "conversion_rate": 0.0,
    "median_response_minutes": None,
    "sla_breaches": 0,
}


async def test_counselor_performance(client: httpx.AsyncClient, factory: Factory) -> None:
    w = await build(client, factory)
    c1 = {
        "leads": 2,
        "interactions": 1,
        "enrollments": 1,
        "conversion_rate": 100.0,
        "median_response_minutes": 990.0,
        "sla_breaches": 0,
    }
    c2 = {
        "leads": 1,
        "interactions": 1,
        "enrollments": 0,
        "conversion_rate": 0.0,
        "median_response_minutes": 2130.0,
        "sla_breaches": 1,
    }
    c3 = {**ZERO, "leads": 1, "sla_breaches": 1}
    admin_view = await w.get("admin", COUNSELORS, **MARCH)
    assert by_user(admin_view) == {
        w.uid("admin"): ZERO,
        w.uid("manager"): ZERO,
        w.uid("c1"): c1,
        w.uid("c2"): c2,
        w.uid("c3"): c3,
    }
    assert [r["full_name"] for r in admin_view] == sorted(
        (r["full_name"] for r in admin_view), key=str.lower
    )
    assert by_user(await w.get("manager", COUNSELORS, **MARCH)) == {
        w.uid("manager"): ZERO,
        w.uid("c1"): c1,
        w.uid("c2"): c2,
    }
    assert by_user(await w.get("c1", COUNSELORS, **MARCH)) == {w.uid("c1"): c1}
    # An empty period: every row, all zeros.
    empty = await w.get("manager", COUNSELORS, date_from="2026-01-01", date_to="2026-01-31")
    assert by_user(empty) == {w.uid(n): ZERO for n in ("manager", "c1", "c2")}
