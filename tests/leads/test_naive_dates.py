"""Datetime filters must carry a timezone offset: a naive one is a 422 naming the parameter."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.factories import Factory

NAIVE = "2026-01-01T00:00:00"
AWARE = "2026-01-01T00:00:00+01:00"

GETS = [
    ("/api/v1/leads", "date_from"),
    ("/api/v1/leads", "date_to"),
    ("/api/v1/admin/audit-logs", "date_from"),
    ("/api/v1/admin/audit-logs", "date_to"),
    ("/api/v1/tasks", "due_before"),
]


@pytest.mark.parametrize(("path", "param"), GETS)
async def test_naive_datetime_query_is_422_naming_the_parameter(
    client: httpx.AsyncClient, factory: Factory, path: str, param: str
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.get(path, headers=admin.headers, params={param: NAIVE})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "validation_error"
    assert param in body["detail"]
    assert [e["loc"][-1] for e in body["errors"]] == [param]
    ok = await client.get(path, headers=admin.headers, params={param: AWARE})
    assert ok.status_code == 200, ok.text
    zulu = await client.get(path, headers=admin.headers, params={param: "2026-01-01T00:00:00Z"})
    assert zulu.status_code == 200


async def test_naive_datetime_in_bulk_filter_is_422_and_writes_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    lead = await factory.lead(org)
    r = await client.post(
        "/api/v1/leads/bulk",
        headers=admin.headers,
        json={"filter": {"date_from": NAIVE}, "action": "status", "value": "contacted"},
    )
    assert r.status_code == 422, r.text
    assert "date_from" in r.text
    after = await client.get(f"/api/v1/leads/{lead.id}", headers=admin.headers)
    assert after.json()["status"] == "new"
    export = await client.post(
        "/api/v1/leads/export", headers=admin.headers, json={"date_to": NAIVE}
    )
    assert export.status_code == 422, export.text
    assert "date_to" in export.text
