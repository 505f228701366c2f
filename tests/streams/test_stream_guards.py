"""Event streams (notifications, call-request events): the session re-check closes a stream
after logout or deactivation, the per-user cap, and a malformed Last-Event-ID.

httpx's ASGI transport buffers a whole response, so streams that must be held open (or
interrupted after their first bytes) are driven through the ASGI interface directly: `send`
sees each chunk as it is produced, which is where the test acts, with the generator paused.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.engine import transactions_that
from leadflow.kit.clock import clock
from leadflow.kit.sse import SlotStreamingResponse, StreamSlots
from leadflow.notifications.service import notify
from tests.calls.conftest import API as CALLS
from tests.calls.conftest import TUESDAY_10, submit
from tests.fixtures.factories import Factory, Member

NOTIFICATIONS = "/api/v1/notifications/stream"
T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


class RawStream:
    """One streamed GET through the ASGI interface, observable chunk by chunk."""

    def __init__(
        self,
        app: FastAPI,
        path: str,
        headers: dict[str, str],
        params: dict[str, Any] | None = None,
        on_first_chunk: Callable[[], Awaitable[None]] | None = None,
        hold: bool = False,
    ) -> None:
        self.app, self.path, self.headers = app, path, headers
        self.query = urlencode(params or {}).encode()
        self.on_first_chunk = on_first_chunk
        self.hold = hold  # block in send after the first chunk until the client disconnects
        self.status: int | None = None
        self.chunks: list[bytes] = []
        self.opened = asyncio.Event()
        self.disconnect = asyncio.Event()
        self._requested = False

    async def _receive(self) -> dict[str, Any]:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            return
        self.chunks.append(message.get("body", b""))
        if not self.opened.is_set():
            self.opened.set()
            if self.on_first_chunk is not None:
                # The test's own writes, not the GET's: they may write.
                with transactions_that(write=True):
                    await self.on_first_chunk()
            if self.hold:
                await asyncio.Event().wait()  # cancelled when the client disconnects

    async def run(self) -> None:
        """Serve the request to its end (or until `disconnect` is set)."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": self.query,
            "root_path": "",
            "headers": [(b"host", b"test")]
            + [(k.lower().encode(), v.encode()) for k, v in self.headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
        }
        await self.app(scope, self._receive, self._send)  # type: ignore[arg-type]

    @property
    def text(self) -> str:
        """Everything sent so far."""
        return b"".join(self.chunks).decode()

    def events(self) -> list[str]:
        """The `event:` names sent, in order."""
        return [line[7:] for line in self.text.splitlines() if line.startswith("event: ")]


async def test_notification_stream_closes_after_logout(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(T0)
    org = await factory.org()
    rep = await factory.member(org, "counselor")

    async def logout() -> None:
        r = await client.post("/api/v1/auth/logout", headers=rep.headers)
        assert r.status_code == 204
        clock.advance(timedelta(seconds=app.state.settings.stream_recheck_seconds))

    stream = RawStream(app, NOTIFICATIONS, rep.headers, {"max_seconds": 3}, on_first_chunk=logout)
    await stream.run()
    assert stream.status == 200
    assert stream.events() == ["session_ended"]
    again = await client.get(NOTIFICATIONS, headers=rep.headers)
    assert again.status_code == 401


async def test_stream_keeps_going_while_the_session_is_valid(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    clock.freeze(T0)
    org = await factory.org()
    rep = await factory.member(org, "counselor")

    async def later() -> None:
        # Past the re-check interval, with a notification waiting: the re-check passes.
        clock.advance(timedelta(seconds=app.state.settings.stream_recheck_seconds + 1))
        await notify(
            session, organization_id=org.id, user_id=rep.user.id, kind="test", title="Hallo"
        )
        await session.commit()

    stream = RawStream(
        app, NOTIFICATIONS, rep.headers, {"max_events": 1, "max_seconds": 3}, on_first_chunk=later
    )
    await stream.run()
    assert stream.events() == ["notification"]


async def test_call_event_stream_closes_after_deactivation(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    app.state.settings.stream_recheck_seconds = 5  # operators may re-check more often
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]

    async def deactivate() -> None:
        admin.user.status = "inactive"
        await session.commit()
        clock.advance(timedelta(seconds=5))

    stream = RawStream(
        app,
        f"{CALLS}/{call_id}/events/stream",
        admin.headers,
        {"max_seconds": 3},
        on_first_chunk=deactivate,
    )
    await stream.run()
    assert stream.status == 200
    # Nothing of the request is sent once the session no longer authenticates.
    assert stream.events() == ["session_ended"]


async def _hold_streams(app: FastAPI, member: Member, n: int) -> list[tuple[RawStream, Any]]:
    held = []
    for _ in range(n):
        s = RawStream(app, NOTIFICATIONS, member.headers, hold=True)
        task = asyncio.create_task(s.run())
        await s.opened.wait()  # one at a time: each has passed authentication and holds a slot
        assert s.status == 200
        held.append((s, task))
    return held


async def test_streams_are_capped_per_user(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    other = await factory.member(org, "counselor")
    for m in (rep, other):
        await notify(session, organization_id=org.id, user_id=m.user.id, kind="t", title="x")
    await session.commit()
    limit = app.state.settings.streams_per_user
    assert limit == 5
    held = await _hold_streams(app, rep, limit)
    try:
        r = await client.get(NOTIFICATIONS, headers=rep.headers, params={"max_seconds": 1})
        assert r.status_code == 429, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "too_many_streams"
        assert "Retry-After" in r.headers
        # The cap is per user: a colleague still gets a stream.
        theirs = await client.get(NOTIFICATIONS, headers=other.headers, params={"max_events": 1})
        assert theirs.status_code == 200
    finally:
        for s, _ in held:
            s.disconnect.set()
        await asyncio.gather(*(t for _, t in held))
    # Closed streams give their slots back.
    assert app.state.stream_slots.open_count(f"user:{rep.user.id}") == 0
    r = await client.get(NOTIFICATIONS, headers=rep.headers, params={"max_events": 1})
    assert r.status_code == 200 and "event: notification" in r.text


async def test_call_streams_count_towards_the_same_cap(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    app.state.settings.streams_per_user = 1
    held = await _hold_streams(app, admin, 1)
    try:
        r = await client.get(
            f"{CALLS}/{call_id}/events/stream", headers=admin.headers, params={"max_seconds": 1}
        )
        assert r.status_code == 429 and r.json()["code"] == "too_many_streams"
    finally:
        for s, _ in held:
            s.disconnect.set()
        await asyncio.gather(*(t for _, t in held))


@pytest.mark.parametrize("value", ["not-a-uuid", "123", "%%%"])
async def test_malformed_last_event_id_on_notifications_is_400(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, value: str
) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    r = await client.get(
        NOTIFICATIONS,
        headers={**rep.headers, "Last-Event-ID": value},
        params={"max_seconds": 1},
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "invalid_last_event_id"
    assert getattr(app.state, "stream_slots", None) is None  # no slot was taken


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "0x10"])
async def test_malformed_last_event_id_on_call_events_is_400(
    client: httpx.AsyncClient, factory: Factory, value: str
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    r = await client.get(
        f"{CALLS}/{call_id}/events/stream",
        headers={**admin.headers, "Last-Event-ID": value},
        params={"max_seconds": 1},
    )
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_last_event_id"


def test_a_stream_response_never_sent_gives_its_slot_back() -> None:
    slots = StreamSlots()
    release = slots.acquire("user-1", 1)

    async def nothing() -> AsyncIterator[bytes]:
        yield b""

    response = SlotStreamingResponse(nothing(), release=release)
    assert slots.open_count("user-1") == 1
    del response
    gc.collect()
    assert slots.open_count("user-1") == 0
    slots.acquire("user-1", 1)  # the slot is free again
