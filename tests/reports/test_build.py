"""POST /reports/build over the dataset: exact rows, row scopes, catalogue checks, saved reports."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock
from leadflow.models.import_batch import ImportBatch
from tests.fixtures.factories import Factory, Member
from tests.reports.conftest import Data, at

FORMULA_NAME = '=HYPERLINK("http://evil.example","x") +1'


async def build(
    client: httpx.AsyncClient, who: Member, body: dict[str, Any], status: int = 201
) -> dict[str, Any]:
    """Build a report; the answer (asserting its status)."""
    r = await client.post(
        "/api/v1/reports/build", headers=who.headers, json={"name": "Test", **body}
    )
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


async def template(client: httpx.AsyncClient, who: Member, template_id: str) -> dict[str, Any]:
    """A template's definition, ready to build."""
    r = await client.get("/api/v1/reports/templates", headers=who.headers)
    assert r.status_code == 200, r.text
    [found] = [t for t in r.json() if t["id"] == template_id]
    return {k: found[k] for k in ("fields", "filters", "grouping", "sorting", "aggregations")}


async def test_catalogue_and_templates(client: httpx.AsyncClient, data: Data) -> None:
    r = await client.get("/api/v1/reports/fields", headers=data.admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    fields = {f["key"]: f for f in body["fields"]}
    for key in ("stage", "assignee_name", "source", "created_month", "won_at", "sla_state"):
        assert key in fields
    assert fields["import_file"]["type"] == "string"
    assert fields["score"]["aggregations"] == ["count", "sum", "avg", "min", "max"]
    assert fields["source"]["aggregations"] == ["count", "min", "max"]
    assert "contains" in fields["source"]["operators"]
    assert "within_last_days" in fields["created_at"]["operators"]
    assert fields["sla_state"]["values"] == ["none", "running", "at_risk", "breached", "met"]
    assert list(body["aggregations"]) == ["count", "sum", "avg", "min", "max"]
    r = await client.get("/api/v1/reports/templates", headers=data.admin.headers)
    ids = [t["id"] for t in r.json()]
    assert ids == [
        "pipeline_by_stage",
        "leads_by_source_and_month",
        "counselor_activity",
        "sla_breaches",
        "import_results",
    ]
    assert set(r.json()[0]) >= {"id", "name", "description", "fields", "filters"}


async def test_detail_rows(client: httpx.AsyncClient, data: Data) -> None:
    out = await build(
        client,
        data.admin,
        {
            "fields": ["full_name", "source", "created_month", "won_at", "interaction_count"],
            "filters": [{"field": "source", "op": "in", "value": ["web"]}],
            "sorting": [{"field": "created_at", "direction": "asc"}],
        },
    )
    assert out["row_count"] == 3
    assert [c["key"] for c in out["columns"]] == [
        "full_name",
        "source",
        "created_month",
        "won_at",
        "interaction_count",
    ]
    assert out["preview_data"] == [
        {
            "full_name": "Anna Alt",
            "source": "web",
            "created_month": "2026-01",
            "won_at": None,
            "interaction_count": 2,
        },
        {
            "full_name": "Ben Bau",
            "source": "web",
            "created_month": "2026-02",  # 23:30 UTC on Jan 31 is February in Berlin
            "won_at": "2026-02-05T12:00:00+00:00",
            "interaction_count": 1,
        },
        {
            "full_name": FORMULA_NAME,
            "source": "web",
            "created_month": "2026-03",
            "won_at": None,
            "interaction_count": 0,
        },
    ]


async def test_leads_by_source_and_month(client: httpx.AsyncClient, data: Data) -> None:
    out = await build(
        client, data.admin, await template(client, data.admin, "leads_by_source_and_month")
    )
    assert out["row_count"] == 4
    assert out["preview_data"] == [
        {"created_month": "2026-01", "source": "web", "leads": 1, "won": 0},
        {"created_month": "2026-02", "source": "fair", "leads": 2, "won": 1},
        {"created_month": "2026-02", "source": "web", "leads": 1, "won": 1},
        {"created_month": "2026-03", "source": "web", "leads": 1, "won": 0},
    ]


async def test_pipeline_by_stage_in_pipeline_order(client: httpx.AsyncClient, data: Data) -> None:
    out = await build(client, data.admin, await template(client, data.admin, "pipeline_by_stage"))
    assert out["preview_data"] == [
        {"stage": "New", "leads": 1, "avg_score": 10.0},
        {"stage": "Qualified", "leads": 1, "avg_score": 50.0},
        {"stage": "Won", "leads": 2, "avg_score": 50.0},
        {"stage": "Lost", "leads": 1, "avg_score": 0.0},
    ]


async def test_counselor_activity(client: httpx.AsyncClient, data: Data) -> None:
    out = await build(client, data.admin, await template(client, data.admin, "counselor_activity"))
    assert out["preview_data"] == [
        {"assignee_name": "Otto Other", "leads": 2, "interactions": 1, "won": 1, "sla_breaches": 0},
        {"assignee_name": "Rita Rep", "leads": 2, "interactions": 3, "won": 1, "sla_breaches": 1},
        {"assignee_name": None, "leads": 1, "interactions": 0, "won": 0, "sla_breaches": 0},
    ]


async def test_sla_breaches_and_import_results(client: httpx.AsyncClient, data: Data) -> None:
    out = await build(client, data.admin, await template(client, data.admin, "sla_breaches"))
    assert out["preview_data"] == [
        {
            "full_name": "Anna Alt",
            "status": "new",
            "assignee_name": "Rita Rep",
            "sla_deadline": "2026-01-15T12:00:00+00:00",
            "sla_breached_at": None,
        }
    ]
    out = await build(client, data.admin, await template(client, data.admin, "import_results"))
    assert out["preview_data"] == [
        {
            "import_date": "2026-02-10",  # 23:30 UTC on Feb 9 in Berlin
            "import_file": "messe.csv",
            "import_batch_id": str(data.batch.id),
            "leads": 2,
            "open": 1,
            "won": 1,
        }
    ]


async def test_counselor_sees_only_own_leads(client: httpx.AsyncClient, data: Data) -> None:
    pipeline = await template(client, data.rep, "pipeline_by_stage")
    out = await build(client, data.rep, pipeline)
    assert out["preview_data"] == [
        {"stage": "New", "leads": 1, "avg_score": 10.0},
        {"stage": "Won", "leads": 1, "avg_score": 30.0},
    ]
    out = await build(client, data.other_rep, pipeline)
    assert out["preview_data"] == [
        {"stage": "Qualified", "leads": 1, "avg_score": 50.0},
        {"stage": "Won", "leads": 1, "avg_score": 70.0},
    ]
    detail = await build(client, data.rep, {"fields": ["full_name"]})
    assert detail["row_count"] == 2
    assert {r["full_name"] for r in detail["preview_data"]} == {"Anna Alt", "Ben Bau"}
    # The manager sees the team's leads (assigned to or created by a team member).
    team = await build(client, data.manager, {"aggregations": [{"function": "count"}]})
    assert team["preview_data"] == [{"count": 2}]
    everyone = await build(client, data.admin, {"aggregations": [{"function": "count"}]})
    assert everyone["preview_data"] == [{"count": 5}]


@pytest.mark.parametrize(
    ("flt", "names"),
    [
        (
            {"field": "assignee_name", "op": "ne", "value": "Rita Rep"},
            [FORMULA_NAME, "Cara Chen", "Dora Dahl"],
        ),
        ({"field": "full_name", "op": "contains", "value": "ALT"}, ["Anna Alt"]),
        ({"field": "full_name", "op": "contains", "value": "%"}, []),
        ({"field": "score", "op": "between", "value": [30, 50]}, ["Ben Bau", "Cara Chen"]),
        ({"field": "score", "op": "gte", "value": 50}, ["Cara Chen", "Dora Dahl"]),
        ({"field": "stage_category", "op": "eq", "value": "won"}, ["Ben Bau", "Dora Dahl"]),
        ({"field": "won_month", "op": "eq", "value": "2026-03"}, ["Dora Dahl"]),
        ({"field": "created_date", "op": "lt", "value": "2026-02-01"}, ["Anna Alt"]),
        (
            {"field": "created_at", "op": "lt", "value": "2026-02-01T00:00:00Z"},
            ["Anna Alt", "Ben Bau"],
        ),
        ({"field": "assignee_id", "op": "is_null"}, [FORMULA_NAME]),
        ({"field": "import_batch_id", "op": "is_not_null"}, ["Cara Chen", "Dora Dahl"]),
        (
            {"field": "needs_action", "op": "eq", "value": False},
            ["Anna Alt", "Ben Bau", "Cara Chen", FORMULA_NAME, "Dora Dahl"],
        ),
    ],
)
async def test_filters(
    client: httpx.AsyncClient, data: Data, flt: dict[str, Any], names: list[str]
) -> None:
    out = await build(
        client,
        data.admin,
        {"fields": ["full_name"], "filters": [flt], "sorting": [{"field": "full_name"}]},
    )
    assert [r["full_name"] for r in out["preview_data"]] == sorted(names)
    assert out["row_count"] == len(names)


async def test_within_last_days_counts_from_now(
    client: httpx.AsyncClient, data: Data, factory: Factory
) -> None:
    clock.freeze(at(2026, 2, 25, 0, 0))
    admin = await factory.relogin(data.admin)
    out = await build(
        client,
        admin,
        {
            "fields": ["full_name"],
            "filters": [{"field": "created_at", "op": "within_last_days", "value": 26}],
            "sorting": [{"field": "created_at"}],
        },
    )
    # Jan 30 to Feb 25: not Anna (Jan 15), not the lead of March 1 (after "now").
    assert [r["full_name"] for r in out["preview_data"]] == ["Ben Bau", "Cara Chen", "Dora Dahl"]


@pytest.mark.parametrize(
    ("body", "code", "loc"),
    [
        ({"fields": ["salary"]}, "unknown_field", ["body", "fields", 0]),
        (
            {"fields": ["source"], "filters": [{"field": "source", "op": "regex", "value": "x"}]},
            "unknown_operator",
            ["body", "filters", 0, "op"],
        ),
        (
            {"grouping": ["source"], "aggregations": [{"function": "median", "field": "score"}]},
            "unknown_aggregation",
            ["body", "aggregations", 0, "function"],
        ),
        (
            {"grouping": ["source"], "aggregations": [{"function": "sum", "field": "source"}]},
            "invalid_report",
            ["body", "aggregations", 0, "function"],
        ),
        (
            {"fields": ["source"], "filters": [{"field": "score", "op": "gt", "value": "1; drop"}]},
            "invalid_report",
            ["body", "filters", 0, "value"],
        ),
        (
            {"fields": ["full_name"], "grouping": ["source"]},
            "invalid_report",
            ["body", "fields", 0],
        ),
        (
            {"grouping": ["source"], "sorting": [{"field": "score"}]},
            "invalid_report",
            ["body", "sorting", 0, "field"],
        ),
        (
            {"fields": ["source"], "sorting": [{"field": "source) desc; --"}]},
            "unknown_field",
            ["body", "sorting", 0, "field"],
        ),
        ({"fields": []}, "invalid_report", ["body", "fields"]),
    ],
)
async def test_definition_errors(
    client: httpx.AsyncClient, data: Data, body: dict[str, Any], code: str, loc: list[Any]
) -> None:
    out = await build(client, data.admin, body, status=422)
    assert out["code"] == code
    assert out["errors"][0]["loc"] == loc
    listed = await client.get("/api/v1/reports", headers=data.admin.headers)
    assert listed.json()["total"] == 0  # nothing saved


async def test_saved_reports_are_the_owners(
    client: httpx.AsyncClient, data: Data, factory: Factory
) -> None:
    out = await build(client, data.admin, {"fields": ["full_name", "source"]})
    rid = out["report_id"]
    listed = (await client.get("/api/v1/reports", headers=data.admin.headers)).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == rid
    got = await client.get(f"/api/v1/reports/{rid}", headers=data.admin.headers)
    assert got.status_code == 200
    assert got.json()["fields"] == ["full_name", "source"] and got.json()["name"] == "Test"
    # Another member of the organisation, and another organisation's admin, see nothing.
    stranger = await factory.member(await factory.org())
    for who in (data.manager, stranger):
        assert (await client.get(f"/api/v1/reports/{rid}", headers=who.headers)).status_code == 404
        assert (
            await client.delete(f"/api/v1/reports/{rid}", headers=who.headers)
        ).status_code == 404
        assert (await client.get("/api/v1/reports", headers=who.headers)).json()["total"] == 0
    r = await client.delete(f"/api/v1/reports/{rid}", headers=data.admin.headers)
    assert r.status_code == 204
    assert (
        await client.get(f"/api/v1/reports/{rid}", headers=data.admin.headers)
    ).status_code == 404


async def test_reports_need_the_permission(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")  # no reports:read by default
    r = await client.get("/api/v1/reports/fields", headers=rep.headers)
    assert r.status_code == 403 and r.json()["code"] == "missing_permission"
    r = await client.get("/api/v1/reports/fields")
    assert r.status_code == 401


@pytest.mark.parametrize("needle", ["ärger", "ÄRGER", "Ärger"])
async def test_contains_ignores_case_beyond_ascii(
    client: httpx.AsyncClient, data: Data, factory: Factory, needle: str
) -> None:
    await factory.lead(data.org, first_name="Özge", last_name="Ärgerlich", source="web")
    out = await build(
        client,
        data.admin,
        {
            "fields": ["full_name"],
            "filters": [{"field": "full_name", "op": "contains", "value": needle}],
        },
    )
    assert [r["full_name"] for r in out["preview_data"]] == ["Özge Ärgerlich"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("score", "NaN"),
        ("score", "Infinity"),
        ("score", "-Infinity"),
        ("created_date", '"20260131"'),
        ("created_date", '"2026-W05-1"'),
        ("created_date", '"2026-01-31\\n"'),
        ("created_month", '"2026-01\\n"'),
    ],
)
async def test_odd_filter_values_are_rejected(
    client: httpx.AsyncClient, data: Data, field: str, value: str
) -> None:
    # Raw JSON: NaN and Infinity are not JSON, but Python's parser takes them.
    body = (
        '{"name": "Odd", "fields": ["full_name"], '
        f'"filters": [{{"field": "{field}", "op": "gt", "value": {value}}}]}}'
    )
    r = await client.post(
        "/api/v1/reports/build",
        headers={**data.admin.headers, "content-type": "application/json"},
        content=body,
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_report"
    assert r.json()["errors"][0]["loc"] == ["body", "filters", 0, "value"]


async def test_assignee_and_import_from_another_organisation_name_no_one(
    client: httpx.AsyncClient, data: Data, factory: Factory, session: AsyncSession
) -> None:
    # Ids that should never cross organisations; if one did, a report must not show the
    # other organisation's person or file.
    other = await factory.org()
    stranger = await factory.member(other)
    batch = ImportBatch(
        organization_id=other.id, created_by=stranger.user.id, status="done", filename="x.csv"
    )
    session.add(batch)
    await session.commit()
    await factory.lead(
        data.org,
        first_name="Stray",
        last_name="Ids",
        source="web",
        assignee_id=stranger.user.id,
        import_batch_id=batch.id,
    )
    out = await build(
        client,
        data.admin,
        {
            "fields": ["full_name", "assignee_name", "assignee_email", "import_file"],
            "filters": [{"field": "full_name", "op": "eq", "value": "Stray Ids"}],
        },
    )
    [row] = out["preview_data"]
    assert row["full_name"] == "Stray Ids"
    assert (row["assignee_name"], row["assignee_email"], row["import_file"]) == (None, None, None)
