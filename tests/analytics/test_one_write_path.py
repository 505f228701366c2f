"""Issue 16, item 6: a lead imported, moved by an import update or by AI apply counts in
analytics exactly like one created and moved by hand — every door writes the same history
(the leads service). Two sources: `hand` (the API) and `import` (the import endpoint and the
AI), each with the same story; every figure filtered by source must be equal and exact."""

from __future__ import annotations

from typing import Any

import httpx

from leadflow.kit.clock import clock
from tests.analytics.world import World, utc
from tests.fixtures.factories import Factory

MAY = {"date_from": "2026-05-01", "date_to": "2026-05-31"}


async def _story(client: httpx.AsyncClient, factory: Factory) -> World:
    """Per source: lead A created in the custom stage `kunde` (before won) and won a day
    later; lead B created `new` and qualified an hour later (its response, in time). Both
    assigned to the counselor at creation."""
    clock.freeze(utc(5, 1, 9))
    w = World(client, factory)
    org = await factory.org()
    w.members["admin"] = await factory.member(org, "admin")
    w.members["rep"] = await factory.member(org, "counselor")
    rep = w.uid("rep")
    await w.call(
        "admin",
        "POST",
        "/api/v1/pipeline/stages",
        json={"key": "kunde", "name": "Kunde", "probability": 80, "position": 4},
    )

    await w.at(utc(5, 4, 9))  # Monday 11:00 in Berlin
    for name, status in (("hand-a", "kunde"), ("hand-b", "new")):
        body = await w.call(
            "admin",
            "POST",
            "/api/v1/leads",
            json={
                "name": name,
                "email": f"{name}@example.com",
                "source": "hand",
                "status": status,
                "assignee_id": rep,
            },
        )
        w.leads[name] = body["id"]
    r = await client.post(
        f"/api/v1/leads/import?analyze=false&assignee_id={rep}",
        content=(
            b"Name,E-Mail,Status,Quelle\n"
            b"import-a,import-a@example.com,kunde,import\n"
            b"import-b,import-b@example.com,new,import\n"
        ),
        headers={**w.members["admin"].headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["imported_count"] == 2, r.text

    await w.at(utc(5, 4, 10))
    await w.call(
        "admin",
        "PATCH",
        f"/api/v1/leads/{w.leads['hand-b']}/status",
        json={"status": "qualified"},
    )
    r = await client.post(
        "/api/v1/leads/import?analyze=false&on_duplicate=update",
        content=b"E-Mail,Status\nimport-b@example.com,qualified\n",
        headers={**w.members["admin"].headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["updated_count"] == 1, r.text

    await w.at(utc(5, 5, 9))
    await w.call(
        "admin", "PATCH", f"/api/v1/leads/{w.leads['hand-a']}/status", json={"status": "won"}
    )
    leads = await w.get("admin", "/api/v1/leads", source="import", q="import-a")
    body = await w.call(
        "admin",
        "POST",
        "/api/v1/ai",
        json={
            "action": "analyze_lead",
            "data": {"lead_id": leads["items"][0]["id"], "apply": True},
        },
    )
    assert (body["applied"], body["status"]) == (True, "won"), body
    await w.at(utc(5, 20, 12))
    return w


def _figures(w: World, source: str) -> Any:
    async def get(path: str, **extra: Any) -> Any:
        return await w.get("admin", f"/api/v1/analytics/{path}", **MAY, source=source, **extra)

    return get


async def test_imported_and_ai_moved_leads_count_like_hand_made_ones(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    w = await _story(client, factory)
    results = {}
    for source in ("hand", "import"):
        get = _figures(w, source)
        kpis = await get("kpis")
        kpis.pop("period")
        results[source] = {
            "kpis": kpis,
            "volume": await get("lead-volume", granularity="week"),
            "funnel": [(s["stage"], s["count"]) for s in await get("funnel")],
            "sources": await get("conversion-by-source"),
            "counselors": [
                {k: v for k, v in row.items() if k not in ("user_id", "full_name")}
                for row in await get("counselor-performance")
                if row["user_id"] == w.uid("rep")
            ],
        }
    assert results["hand"] == {
        "kpis": {
            "total_leads": 2,
            "new_leads": 2,
            "enrollments": 1,
            "new_leads_enrolled": 1,
            "conversion_rate": 50.0,
            "active_pipeline": {  # B in qualified (40 %)
                "leads": 1,
                "weighted_leads": 0.4,
                "value": 0.0,
                "weighted_value": 0.0,
            },
            "median_first_response_minutes": 60.0,  # B left the first stage after an hour
            "responses": 1,
            # Deadline Monday 13:00 Berlin: B answered in time, A never left `kunde` for
            # a response (only leaving the first stage or an outbound contact is one).
            "sla_compliance_rate": 50.0,
            "sla_clocks_ended": 2,
            "sla_met_in_time": 1,
        },
        "volume": [
            {"date": "2026-04-27", "count": 0},
            {"date": "2026-05-04", "count": 2},
            {"date": "2026-05-11", "count": 0},
            {"date": "2026-05-18", "count": 0},
            {"date": "2026-05-25", "count": 0},
        ],
        # B: new → qualified; A: kunde → won (the stages before `kunde` count as passed).
        "funnel": [
            ("new", 2),
            ("contacted", 2),
            ("qualified", 2),
            ("proposal", 1),
            ("kunde", 1),
            ("won", 1),
        ],
        "sources": [{"source": "hand", "total_leads": 2, "enrolled": 1, "conversion_rate": 50.0}],
        "counselors": [
            {
                "leads": 2,
                "interactions": 0,
                "enrollments": 1,
                "conversion_rate": 50.0,
                "median_response_minutes": 60.0,
                "sla_breaches": 1,
            }
        ],
    }
    hand, imported = results["hand"], results["import"]
    assert imported["sources"] == [{**hand["sources"][0], "source": "import"}]
    assert {**imported, "sources": None} == {**hand, "sources": None}
