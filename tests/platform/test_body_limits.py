"""Request bodies are bounded while they stream: 413 problem+json, nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message, Receive, Scope, Send

from leadflow.config import Settings
from leadflow.kit.middleware import BodyLimitMiddleware
from leadflow.models.lead import Lead
from tests.fixtures.factories import Factory

LIMIT = 4096
IMPORT_LIMIT = 64 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Small limits, so the tests stay small."""
    settings.max_body_bytes = LIMIT
    settings.import_max_bytes = IMPORT_LIMIT
    return settings


async def _leads(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Lead)) or 0)


def _assert_413(r: httpx.Response, limit: int) -> None:
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "payload_too_large" and body["status"] == 413
    assert body["type"] == "/problems/payload_too_large" and body["max_bytes"] == limit
    assert body["request_id"] == r.headers["x-request-id"]


async def test_declared_oversized_json_is_refused_before_auth(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    lead = {"first_name": "Big", "notes": "x" * (LIMIT + 10)}
    r = await client.post("/api/v1/leads", headers=admin.headers, json=lead)
    _assert_413(r, LIMIT)
    # Refused before authentication: no credentials get the same 413, not a 401.
    _assert_413(await client.post("/api/v1/leads", json=lead), LIMIT)
    assert await _leads(session) == 0
    # The same lead with a body under the limit is created (the 413 was the size only).
    ok = await client.post("/api/v1/leads", headers=admin.headers, json={"first_name": "Big"})
    assert ok.status_code == 201, ok.text


async def test_chunked_oversized_json_stops_reading_at_the_limit(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    sent: list[int] = []
    chunk = 1024

    async def body() -> AsyncIterator[bytes]:
        yield b'{"first_name": "Big", "notes": "'
        for _ in range(100):
            sent.append(chunk)
            yield b"x" * chunk
        yield b'"}'

    # An async iterable is sent chunked, without Content-Length.
    r = await client.post(
        "/api/v1/leads",
        headers={**admin.headers, "Content-Type": "application/json"},
        content=body(),
    )
    assert "content-length" not in r.request.headers
    _assert_413(r, LIMIT)
    assert await _leads(session) == 0
    # Reading stopped once the limit was crossed, not at the end of the stream.
    assert sum(sent) <= LIMIT + 2 * chunk


def _csv(rows: int) -> bytes:
    lines = ["Vorname,Nachname,E-Mail"]
    lines += [f"Name{i},Nachname{i},person{i}@example.com" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("path", ["/api/v1/leads/import", "/import/leads", "/api/leads/import"])
async def test_import_route_has_the_import_limit(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, path: str
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    headers = {**admin.headers, "Content-Type": "text/csv"}
    data = _csv(300)
    assert LIMIT < len(data) < IMPORT_LIMIT
    r = await client.post(path, headers=headers, content=data)
    assert r.status_code == 200, r.text
    assert r.json()["imported_count"] == 300
    before = await _leads(session)
    r = await client.post(path, headers=headers, content=_csv(3000))
    _assert_413(r, IMPORT_LIMIT)
    assert await _leads(session) == before


async def test_import_preview_has_the_import_limit(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    admin = await factory.member(await factory.org())
    headers = {**admin.headers, "Content-Type": "text/csv"}
    path = "/api/v1/leads/import/preview"
    r = await client.post(path, headers=headers, content=_csv(300))
    assert (r.status_code, r.json()["file"]["rows"]) == (200, 300), r.text
    _assert_413(await client.post(path, headers=headers, content=_csv(3000)), IMPORT_LIMIT)
    assert await _leads(session) == 0


async def test_limit_applies_to_every_method_and_route(client: httpx.AsyncClient) -> None:
    # Even an unknown route: the body is refused before routing.
    _assert_413(await client.put("/api/v1/nowhere", content=b"x" * (LIMIT + 1)), LIMIT)
    r = await client.post("/api/v1/auth/login", content=b"x" * LIMIT)  # at the limit: read
    assert r.status_code == 422


async def test_limit_crossed_after_the_response_started_ends_the_stream() -> None:
    async def late_reader(scope: Scope, receive: Receive, send: Send) -> None:
        # Starts its answer, then reads the body (a streaming echo would do this).
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"start;", "more_body": True})
        while True:
            message = await receive()
            await send({"type": "http.response.body", "body": b".", "more_body": True})
            if not message.get("more_body"):
                break
        await send({"type": "http.response.body", "body": b"end", "more_body": False})

    chunks = [{"type": "http.request", "body": b"x" * 1024, "more_body": True}] * 20
    incoming = iter([*chunks, {"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> Message:
        return next(incoming)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = BodyLimitMiddleware(late_reader, limits=lambda: (LIMIT, {}))
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}
    await middleware(scope, receive, send)
    # Too late for a 413: the stream is closed cleanly after what was already sent.
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert [m["type"] for m in sent[1:]] == ["http.response.body"] * (len(sent) - 1)
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert not any(m.get("more_body") is False for m in sent[:-1])
    body = b"".join(m["body"] for m in sent[1:])
    assert body.startswith(b"start;") and b"end" not in body
    assert body.count(b".") == LIMIT // 1024
