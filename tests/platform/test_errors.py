"""problem+json everywhere, request ids, no stack traces, JSON logs."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.kit.jsonlog import JsonFormatter


async def test_unknown_route_is_problem_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/does-not-exist")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == 404 and body["code"] == "not_found"


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    r = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = (await client.get("/health")).headers["x-request-id"]
    assert len(generated) == 32
    # Unsafe ids are replaced, not echoed.
    r = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"


async def test_validation_errors_list_loc_and_msg(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/auth/register", json={"email": "x"})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "validation_error"
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "password") in locs and ("body", "email") in locs
    assert all(isinstance(e["msg"], str) for e in body["errors"])


async def test_500_has_no_stack_trace_and_is_logged_with_request_id(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, database=database)  # its own: a route is added

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app)
    with caplog.at_level(logging.ERROR, logger="leadflow.errors"):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/boom", headers={"X-Request-ID": "req-boom"})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-request-id"] == "req-boom"
    body = r.json()
    assert body["code"] == "internal_error" and body["request_id"] == "req-boom"
    assert "secret internals" not in r.text and "Traceback" not in r.text
    record = next(rec for rec in caplog.records if rec.name == "leadflow.errors")
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "ERROR"
    assert "secret internals" in line["exc"]


def test_json_formatter_emits_one_json_object() -> None:
    rec = logging.LogRecord("leadflow.x", logging.INFO, "f.py", 1, "hello %s", ("world",), None)
    rec.lead_id = "L1"
    out = JsonFormatter().format(rec)
    assert "\n" not in out
    data = json.loads(out)
    assert data["msg"] == "hello world" and data["lead_id"] == "L1" and data["level"] == "INFO"


async def test_method_not_allowed_is_problem(client: httpx.AsyncClient) -> None:
    r = await client.delete("/health")
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"


async def test_openapi_hides_aliases(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/api/v1/auth/login" in paths and "/api/v1/users" in paths
    assert not any(p.startswith(("/api/auth", "/api/users", "/api/audit-logs")) for p in paths)
    assert (await client.get("/metrics")).status_code == 200
