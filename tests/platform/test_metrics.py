"""/metrics: bearer token when configured, bounded label values."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from tests.fixtures.factories import Factory


def _count(method: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "leadflow_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


async def test_metrics_open_without_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert "leadflow_http_requests_total" in r.text


async def test_metrics_require_the_bearer_token_when_set(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.state.settings.metrics_token = "s3cret-metrics-token"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        r = await client.get("/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["code"] == "unauthorized"
        assert "leadflow_http" not in r.text
    r = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
    assert r.status_code == 200 and "leadflow_http_requests_total" in r.text


async def test_unmatched_paths_and_odd_methods_add_no_label_values(
    client: httpx.AsyncClient,
) -> None:
    unmatched = _count("GET", "unmatched", "404")
    other = _count("OTHER", "/health", "405")
    odd_path = f"/api/v1/scan-{uuid.uuid4().hex}"
    assert (await client.get(odd_path)).status_code == 404
    assert (await client.request("BREW", "/health")).status_code == 405
    text = (await client.get("/metrics")).text
    assert odd_path not in text and 'method="BREW"' not in text
    assert _count("GET", "unmatched", "404") == unmatched + 1
    assert _count("OTHER", "/health", "405") == other + 1


async def test_aliased_request_counts_under_its_route(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    before = _count("GET", "/api/v1/leads", "200")
    assert (await client.get("/leads", headers=admin.headers)).status_code == 200
    assert _count("GET", "/api/v1/leads", "200") == before + 1
