"""Odd input found by fuzzing is a 4xx problem+json that writes nothing, never a 5xx:
numbers beyond 64 bits, null for fields that always hold a value, values longer than a
column, and a bad export sort (which used to fail after the stream had started)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from leadflow.auth.service import _touch_due
from leadflow.kit.nultext import nul_path
from leadflow.kit.problems import _database_value_error
from leadflow.models.activity import MessageEvent
from leadflow.models.assignment_rule import SlaPolicy
from leadflow.models.lead import Lead
from tests.fixtures.factories import Factory

HUGE = 10**24


def _is_problem(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users",
        "/api/v1/tasks",
        "/api/v1/notifications",
        "/api/v1/imports",
        "/api/v1/call-requests",
        "/api/v1/admin/audit-logs",
        "/api/v1/leads",
    ],
)
async def test_offsets_beyond_64_bits_are_422(
    client: httpx.AsyncClient, factory: Factory, path: str
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.get(path, headers=admin.headers, params={"offset": HUGE})
    _is_problem(r, 422)


async def test_huge_numbers_in_bodies_are_422_and_write_nothing(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/sla/policies",
        headers=admin.headers,
        json={"name": "Big", "duration_minutes": 60, "position": 13830723944782708736},
    )
    _is_problem(r, 422)
    count = select(func.count()).select_from(SlaPolicy).where(SlaPolicy.organization_id == org.id)
    assert await session.scalar(count) == 0
    lead = await factory.lead(org)
    r = await client.patch(
        f"/api/v1/leads/{lead.id}", headers=admin.headers, json={"company": "X", "version": HUGE}
    )
    _is_problem(r, 422)


@pytest.mark.parametrize(
    "body", [{"needs_action": None}, {"status": None}, {"tags": None}, {"score": None}]
)
async def test_null_for_a_lead_field_that_always_holds_a_value_is_422(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, body: dict[str, None]
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    lead = await factory.lead(org, company="Before")
    r = await client.patch(
        f"/api/v1/leads/{lead.id}", headers=admin.headers, json={**body, "company": "After"}
    )
    _is_problem(r, 422)
    assert next(iter(body)) in r.json()["errors"][0]["msg"]
    company = await session.scalar(select(Lead.company).where(Lead.id == lead.id))
    assert company == "Before"
    # Null where clearing means something still works.
    r = await client.patch(f"/api/v1/leads/{lead.id}", headers=admin.headers, json={"notes": None})
    assert r.status_code == 200, r.text


async def test_null_organisation_settings_are_422(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    for body in ({"default_language": None}, {"clear_needs_action_on_interaction": None}):
        r = await client.patch("/api/v1/admin/settings", headers=admin.headers, json=body)
        _is_problem(r, 422)
    r = await client.get("/api/v1/admin/settings", headers=admin.headers)
    assert r.status_code == 200 and r.json()["default_language"] in ("de", "en")


async def test_unsubscribe_event_with_a_long_message_id_is_stored(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    lead = await factory.lead(org)
    r = await client.post(
        f"/api/v1/leads/{lead.id}/events",
        headers=admin.headers,
        json={"type": "unsubscribed", "channel": "email", "message_id": "m" * 200},
    )
    assert r.status_code == 201, r.text
    stored = select(func.count()).select_from(MessageEvent).where(MessageEvent.lead_id == lead.id)
    assert await session.scalar(stored) == 1


async def test_bad_export_sort_is_422_before_the_stream_starts(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await factory.lead(org)
    for sort in ("", "nope", "-"):
        r = await client.post("/api/v1/leads/export", headers=admin.headers, json={"sort": sort})
        _is_problem(r, 422)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/leads/import", ""),
        ("/api/v1/leads/import", "?mapping=" + "[" * 5000),
        ("/api/process-request", ""),
        ("/api/v1/leads", ""),
    ],
)
async def test_deeply_nested_json_is_a_4xx(
    client: httpx.AsyncClient, factory: Factory, path: str, query: str
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        path + query,
        headers={**admin.headers, "Content-Type": "application/json"},
        content=b"[" * 100_000,
    )
    assert 400 <= r.status_code < 500, r.text


async def test_text_the_database_cannot_store_is_never_a_5xx(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    before = await session.scalar(select(func.count()).select_from(Lead))
    # PostgreSQL text cannot hold a NUL byte (the lead list reads through the fast path).
    for path, param in (("/api/v1/users", "role"), ("/api/v1/leads", "source")):
        r = await client.get(path, headers=admin.headers, params={param: "a\x00b"})
        assert r.status_code < 500, r.text
    # JSON escapes for a NUL byte and for a lone surrogate (not encodable as UTF-8).
    for escaped in ("a\\u0000b", "x\\udba1y"):
        bodies = {
            "/api/v1/leads": '{"name": "%s", "email": "odd@example.com"}',
            "/api/v1/auth/register": '{"email": "odd-owner@example.com", "password": '
            '"correct horse battery", "full_name": "%s", "organization_name": "Odd"}',
        }
        for path, template in bodies.items():
            r = await client.post(
                path,
                headers={**admin.headers, "Content-Type": "application/json"},
                content=template.replace("%s", escaped).encode(),
            )
            assert r.status_code < 500, (path, escaped, r.text)
            if r.status_code >= 400:
                assert r.headers["content-type"].startswith("application/problem+json")
                # Refused: nothing written.
                assert await session.scalar(select(func.count()).select_from(Lead)) == before
            before = await session.scalar(select(func.count()).select_from(Lead))


async def test_database_refusals_map_to_client_errors() -> None:
    """The last line of defence, fed the errors the drivers raise."""
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": []})

    class PgDataError(Exception):
        sqlstate = "22021"

    cases = [
        (sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")), 409),
        (sa_exc.DBAPIError("SELECT", {}, PgDataError("bad byte")), 422),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), 422),
        (sa_exc.DBAPIError("SELECT", {}, Exception("connection lost")), 500),
    ]
    for error, status in cases:
        response = await _database_value_error(request, error)
        assert response.status_code == status, error


def test_a_burst_of_reads_with_one_key_queues_one_touch_a_minute() -> None:
    key, t0 = uuid.uuid4(), datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert _touch_due(key, t0)
    assert not _touch_due(key, t0 + timedelta(seconds=59))
    assert _touch_due(key, t0 + timedelta(seconds=61))
    assert _touch_due(uuid.uuid4(), t0)


async def test_a_nul_character_is_refused_alike_on_both_engines(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    """SQLite would store U+0000 where PostgreSQL cannot: both answer the same 422 first."""
    org = await factory.org()
    admin = await factory.member(org)
    before = await session.scalar(select(func.count()).select_from(Lead))
    json_headers = {**admin.headers, "Content-Type": "application/json"}
    for body in (
        '{"first_name": "Lea\\u0000", "email": "nul@example.com"}',
        '{"first_name": "Lea", "email": "nul@example.com", "tags": ["ok", "a\\u0000b"]}',
        '{"first_name": "Lea", "email": "nul@example.com", "custom": {"k\\u0000": 1}}',
    ):
        r = await client.post("/api/v1/leads", headers=json_headers, content=body.encode())
        _is_problem(r, 422)
        assert r.json()["detail"] == "Text may not contain the NUL character (U+0000)"
        assert r.json()["errors"][0]["loc"][0] == "body"
    assert await session.scalar(select(func.count()).select_from(Lead)) == before
    r = await client.get("/api/v1/leads", headers=admin.headers, params={"q": "a\x00b"})
    _is_problem(r, 422)
    assert r.json()["errors"][0]["loc"] == ["query", "q"]
    # An escaped backslash followed by "u0000" is plain text, not a NUL.
    r = await client.post(
        "/api/v1/leads",
        headers=json_headers,
        content=b'{"first_name": "Lea \\\\u0000", "email": "not-nul@example.com"}',
    )
    assert r.status_code == 201, r.text
    assert r.json()["first_name"] == "Lea \\u0000"
    # JSON in UTF-16 is read too; a lone surrogate in the path is escaped in the answer.
    for content in (
        '{"first_name": "Lea\\u0000", "email": "utf16@example.com"}'.encode("utf-16"),
        b'{"first_name": "Lea", "email": "s@example.com", "custom": {"\\udba1": "\\u0000"}}',
    ):
        r = await client.post("/api/v1/leads", headers=json_headers, content=content)
        _is_problem(r, 422)
        assert r.json()["detail"] == "Text may not contain the NUL character (U+0000)"
    assert r.json()["errors"][0]["loc"] == ["body", "custom", "\\udba1"]
    assert await session.scalar(select(func.count()).select_from(Lead)) == (before or 0) + 1


async def test_finding_a_nul_in_a_deep_wide_body_holds_no_copy_per_item() -> None:
    """The walk keeps the containers still to visit, not a path per item: 400 levels deep
    with 200,000 numbers at the bottom is one pass (a path copied per item would be ~1 GB)."""
    deep: Any = [0] * 200_000 + ["a\x00"]
    for i in range(400):
        deep = {f"k{i}": deep}
    path = nul_path(deep)
    assert path is not None and len(path) == 401 and path[-1] == "200000"
    assert nul_path({"a": [1, {"b": "ok"}], "c\x00": 1}) == ["c\\u0000"]
    assert nul_path([["x"], {"y": None}]) is None and nul_path("a\x00") == []
