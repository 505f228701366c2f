"""The call-request API: accept, idempotency, the seed alias and its error shape, validation,
permissions, scopes, other organisations, lists, timeline, the event stream."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock
from leadflow.models.audit_log import AuditLog
from leadflow.models.call_request import CallRequest
from leadflow.worker.jobs import JobContext, RecordingQueue, run_job
from tests.calls.conftest import (
    API,
    BOOKS,
    NOT_BOOKED,
    TUESDAY_10,
    body,
    fetch,
    submit,
)
from tests.fixtures.factories import Factory

ALIAS = "/api/process-request"


async def _count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(CallRequest)) or 0)


def _process_jobs(queue: RecordingQueue) -> list[tuple[Any, ...]]:
    return [args for name, args, _ in queue.items if name == "calls.process"]


async def test_accept_stores_the_request_and_answers_at_once(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    member = await factory.member(org, "counselor")
    sent = body(request_id="3f1c-client-id")
    r = await client.post(API, headers=member.headers, json=sent)
    assert r.status_code == 202
    out = r.json()
    assert out["status"] == "accepted"
    assert out["request_id"] == "3f1c-client-id"
    assert out["message"] == "Request is being processed"
    assert out["duplicate"] is False and out["call_status"] == "queued"
    assert r.headers["location"] == f"{API}/{out['id']}"
    by_id = await fetch(client, member.headers, out["id"])
    assert by_id == await fetch(client, member.headers, "3f1c-client-id")
    assert by_id["external_user_id"] == "frontend-user-1"
    assert by_id["requested_by"] == member.id
    assert by_id["callback_number"] == "+493012345678"
    assert by_id["number_to_call"] == "+4915123456780"
    assert by_id["user_profile"] == {"username": "Max Mustermann", "city": "Berlin"}
    assert by_id["preferred_time"] == sent["preferred_time"]
    audits = await session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "call_request.create")
    )
    assert audits == 1


async def test_same_request_id_twice_is_one_request_and_one_job(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, queue: RecordingQueue
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    sent = body()
    first = await client.post(API, headers=admin.headers, json=sent)
    second = await client.post(API, headers=admin.headers, json=sent)
    via_alias = await client.post(ALIAS, headers=admin.headers, json=sent)
    assert first.status_code == 202
    assert second.status_code == 200 and via_alias.status_code == 200
    assert second.json()["id"] == first.json()["id"] == via_alias.json()["id"]
    assert second.json()["duplicate"] is True
    assert await _count(session) == 1
    assert _process_jobs(queue) == [(first.json()["id"],)]
    # The id is unique per organisation, not globally.
    other = await factory.member(await factory.org())
    assert (await client.post(API, headers=other.headers, json=sent)).status_code == 202


async def test_request_id_of_a_colleague_out_of_scope_is_a_conflict(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    a = await factory.member(org, "counselor")
    b = await factory.member(org, "counselor")
    sent = body()
    assert (await client.post(API, headers=a.headers, json=sent)).status_code == 202
    r = await client.post(API, headers=b.headers, json=sent)
    assert r.status_code == 409 and r.json()["code"] == "duplicate_request_id"
    assert "id" not in r.json()


async def test_seed_alias_accepts_the_seed_body(
    client: httpx.AsyncClient, factory: Factory, queue: RecordingQueue
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    sent = body()
    sent["number_to_call"] = "+49 987 654321"  # from the seed's example
    r = await client.post(ALIAS, headers=admin.headers, json=sent)
    assert r.status_code == 202
    assert r.headers["content-type"] == "application/json"
    out = r.json()
    assert {k: out[k] for k in ("status", "request_id", "message")} == {
        "status": "accepted",
        "request_id": sent["request_id"],
        "message": "Request is being processed",
    }
    assert _process_jobs(queue) == [(out["id"],)]
    assert "/api/process-request" not in (await client.get("/openapi.json")).text


@pytest.mark.parametrize(
    ("change", "status", "mentions"),
    [
        pytest.param({"title": None}, 422, "title", id="missing-title"),
        pytest.param({"callback_number": "12"}, 422, "callback_number", id="invalid-phone"),
        pytest.param({"number_to_call": "+49 123"}, 422, "number_to_call", id="invalid-number"),
        pytest.param({"number_to_call": None}, 422, "number_to_call", id="nobody-to-call"),
        pytest.param({"request_id": "a/b"}, 422, "request_id", id="unsafe-request-id"),
        pytest.param({"user_profile": "Berlin"}, 422, "user_profile", id="profile-not-object"),
        pytest.param({"title": "Rückruf\x00"}, 422, "NUL character", id="nul-in-text"),
    ],
)
async def test_seed_alias_errors_have_the_seed_shape(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    queue: RecordingQueue,
    change: dict[str, Any],
    status: int,
    mentions: str,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    sent = body(**change)
    sent = {k: v for k, v in sent.items() if not (k == "title" and v is None)}
    r = await client.post(ALIAS, headers=admin.headers, json=sent)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    out = r.json()
    assert out["status"] == "error"
    assert out["request_id"] == sent["request_id"]
    assert mentions in out["error"]
    assert await _count(session) == 0
    assert queue.items == []


async def test_seed_alias_auth_and_body_errors_have_the_seed_shape(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    sent = body()
    anonymous = await client.post(ALIAS, json=sent)
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "status": "error",
        "request_id": sent["request_id"],
        "error": "Authentication required",
        "code": "not_authenticated",
    }
    forbidden = await client.post(ALIAS, headers=viewer.headers, json=sent)
    assert forbidden.status_code == 403
    assert forbidden.json()["status"] == "error" and "calls:write" in forbidden.json()["error"]
    garbage = await client.post(
        ALIAS, headers={**viewer.headers, "Content-Type": "application/json"}, content=b"{nope"
    )
    assert garbage.status_code == 400
    assert garbage.json()["status"] == "error" and garbage.json()["request_id"] is None
    assert await _count(session) == 0


async def test_canonical_errors_are_problem_json(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, queue: RecordingQueue
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    viewer = await factory.member(org, "viewer")
    r = await client.post(API, headers=admin.headers, json=body(callback_number="nope"))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "validation_error"
    assert r.json()["errors"][0]["loc"] == ["body", "callback_number"]
    missing = {k: v for k, v in body().items() if k != "title"}
    r = await client.post(API, headers=admin.headers, json=missing)
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = await client.post(API, headers=viewer.headers, json=body())
    assert r.status_code == 403 and r.json()["code"] == "missing_permission"
    assert (await client.post(API, json=body())).status_code == 401
    assert await _count(session) == 0
    assert queue.items == []


async def test_api_key_with_calls_write_may_submit(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/admin/api-keys",
        headers=admin.headers,
        json={"name": "frontend", "scopes": ["calls:write", "calls:read"]},
    )
    assert r.status_code == 201, r.text
    key = {"X-API-Key": r.json()["api_key"]}
    assert (await client.post(ALIAS, headers=key, json=body())).status_code == 202
    reader = await client.post(
        "/api/v1/admin/api-keys",
        headers=admin.headers,
        json={"name": "reader", "scopes": ["calls:read"]},
    )
    read_only = {"X-API-Key": reader.json()["api_key"]}
    assert (await client.post(ALIAS, headers=read_only, json=body())).status_code == 403


async def test_lead_link_by_id_or_phone_and_number_from_the_lead(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    practice = await factory.lead(org, phone="+4915123456780")
    customer = await factory.lead(org, phone="+4915123456781")
    unrelated = await factory.lead(org, phone="+4915199999990")
    # number_to_call matches a lead: linked automatically.
    auto = await submit(client, admin.headers, number_to_call=BOOKS)
    assert (await fetch(client, admin.headers, auto["id"]))["lead_id"] == str(practice.id)
    # Explicit lead without number_to_call: the lead's phone is called.
    explicit = await submit(client, admin.headers, number_to_call=None, lead_id=str(customer.id))
    row = await fetch(client, admin.headers, explicit["id"])
    assert row["lead_id"] == str(customer.id) and row["number_to_call"] == "+4915123456781"
    # Nobody matches: not linked.
    loose = await submit(client, admin.headers, number_to_call="+49 151 23456782")
    assert (await fetch(client, admin.headers, loose["id"]))["lead_id"] is None
    # Another organisation's lead is a 404, nothing stored.
    foreign = await factory.lead(await factory.org(), phone="+4915123456783")
    r = await client.post(API, headers=admin.headers, json=body(lead_id=str(foreign.id)))
    assert r.status_code == 404
    # The practice's timeline shows the request, with its current status.
    await run_job(jobs, "calls.process", auto["id"])
    tl = await client.get(
        f"/api/v1/leads/{practice.id}/timeline",
        headers=admin.headers,
        params={"kind": "call_request"},
    )
    assert tl.status_code == 200
    items = tl.json()["items"]
    assert len(items) == 1 and tl.json()["total"] == 1
    assert items[0]["kind"] == "call_request"
    assert items[0]["data"]["status"] == "booked" and items[0]["data"]["summary"]
    assert items[0]["actor"]["id"] == admin.id
    unrelated_tl = await client.get(
        f"/api/v1/leads/{unrelated.id}/timeline",
        headers=admin.headers,
        params={"kind": "call_request"},
    )
    assert unrelated_tl.json()["total"] == 0


async def test_scopes_filters_and_pagination(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    viewer = await factory.member(org, "viewer")
    a = await factory.member(org, "counselor")
    b = await factory.member(org, "counselor")
    lead = await factory.lead(org, phone="+4915123456789")
    a1 = await submit(client, a.headers, user_id="ext-a")
    a2 = await submit(client, a.headers, user_id="ext-a", number_to_call=NOT_BOOKED)
    b1 = await submit(client, b.headers, user_id="ext-b")
    await run_job(jobs, "calls.process", a1["id"])

    async def ids(headers: dict[str, str], **params: Any) -> list[str]:
        r = await client.get(API, headers=headers, params=params)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert set(await ids(a.headers)) == {a1["id"], a2["id"]}  # own only
    assert set(await ids(admin.headers)) == {a1["id"], a2["id"], b1["id"]}
    assert set(await ids(viewer.headers)) == {a1["id"], a2["id"], b1["id"]}  # org scope
    assert (await client.get(f"{API}/{b1['id']}", headers=a.headers)).status_code == 404
    assert (await client.post(f"{API}/{b1['id']}/cancel", headers=a.headers)).status_code == 404
    assert await ids(admin.headers, status="booked") == [a1["id"]]
    assert set(await ids(admin.headers, user="ext-b")) == {b1["id"]}
    assert set(await ids(admin.headers, user=b.id)) == {b1["id"]}
    assert set(await ids(a.headers, user="me")) == {a1["id"], a2["id"]}
    assert await ids(admin.headers, lead_id=str(lead.id)) == [a2["id"]]
    page = (await client.get(API, headers=admin.headers, params={"limit": 2, "offset": 2})).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 2
    assert len(page["items"]) == 1
    bad = await client.get(API, headers=admin.headers, params={"status": "ringing"})
    assert bad.status_code == 422
    # A viewer reads but cannot cancel.
    r = await client.post(f"{API}/{a2['id']}/cancel", headers=viewer.headers)
    assert r.status_code == 403


async def test_another_organisations_request_is_404(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(TUESDAY_10)
    mine = await factory.member(await factory.org())
    theirs = await factory.member(await factory.org())
    accepted = await submit(client, mine.headers, request_id="shared-looking-id")
    for ident in (accepted["id"], "shared-looking-id"):
        for method, path in [
            ("GET", f"{API}/{ident}"),
            ("GET", f"{API}/{ident}/events"),
            ("GET", f"{API}/{ident}/events/stream"),
            ("POST", f"{API}/{ident}/cancel"),
        ]:
            r = await client.request(method, path, headers=theirs.headers)
            assert r.status_code == 404, (method, path)
            assert r.json()["code"] == "not_found"
    assert (await client.get(API, headers=theirs.headers)).json()["total"] == 0
    assert (await fetch(client, mine.headers, accepted["id"]))["status"] == "queued"


def _sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "event" in fields:
            events.append(fields)
    return events


async def test_event_stream_sends_every_event_then_ends(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    await run_job(jobs, "calls.process", call_id)
    r = await client.get(f"{API}/{call_id}/events/stream", headers=admin.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r.text)
    assert [e["id"] for e in events[:-1]] == ["1", "2", "3", "4", "5", "6"]
    assert events[-1]["event"] == "end"  # booked: nothing more will come
    assert '"type":"booking_confirmed"' in events[4]["data"]
    resumed = _sse(
        (
            await client.get(
                f"{API}/{call_id}/events/stream", headers={**admin.headers, "Last-Event-ID": "4"}
            )
        ).text
    )
    assert [e.get("id") for e in resumed] == ["5", "6", None]
    limited = _sse(
        (
            await client.get(
                f"{API}/{call_id}/events/stream",
                headers=admin.headers,
                params={"after": 1, "max_events": 2},
            )
        ).text
    )
    assert [e["id"] for e in limited] == ["2", "3"]


async def test_event_stream_of_an_open_request_ends_after_max_events(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    r = await client.get(
        f"{API}/{call_id}/events/stream", headers=admin.headers, params={"max_events": 1}
    )
    events = _sse(r.text)
    assert len(events) == 1 and events[0]["event"] == "call_event"
    assert '"type":"request_received"' in events[0]["data"]
