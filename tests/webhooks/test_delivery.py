"""Webhook delivery against a real receiver that verifies every signature with the
`standardwebhooks` library: lead events, order per lead, retries with backoff, disabling after
sustained failure, replay, the test event, secret rotation, and the delivery-time address check.
The clock is frozen and moved; nothing sleeps."""

from __future__ import annotations

import uuid
from datetime import timedelta
from math import floor

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leadflow.auth.service import actor_for_user
from leadflow.db.engine import Database
from leadflow.exceptions import NotFound
from leadflow.kit.clock import clock
from leadflow.models.outbox import Notification
from leadflow.models.webhook import WebhookDelivery, WebhookEndpoint
from leadflow.webhooks import delivery, repository, service
from leadflow.webhooks.delivery import SECRET_UNREADABLE, backoff, dispatch
from leadflow.worker.jobs import JobContext, RecordingQueue
from tests.fixtures.factories import Factory
from tests.fixtures.sql import plan_of, sent_statements
from tests.webhooks.conftest import API, T0, subscribe
from tests.webhooks.receiver import Receiver

LEADS = "/api/v1/leads"


async def _lead(client: httpx.AsyncClient, headers: dict[str, str], **fields: str) -> str:
    r = await client.post(
        LEADS,
        headers=headers,
        json={"first_name": "Eva", "last_name": "Kramer", "email": "eva@example.com", **fields},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_lead_events_arrive_signed_in_order(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    receiver: Receiver,
    queue: RecordingQueue,
    frozen: object,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver)
    assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "active"
    lead_id = await _lead(client, admin.headers)
    url = f"{LEADS}/{lead_id}"
    assert (
        await client.patch(url, headers=admin.headers, json={"company": "ACME", "version": 1})
    ).status_code == 200
    assert (
        await client.patch(f"{url}/status", headers=admin.headers, json={"status": "contacted"})
    ).status_code == 200
    assert (
        await client.post(f"{url}/assign", headers=admin.headers, json={"assignee_id": admin.id})
    ).status_code == 200
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    # The worker is told after each commit (once per transaction).
    assert [n for n, _, _ in queue.items].count("webhooks.dispatch") == 5

    assert await dispatch(jobs) == {"delivered": 5, "failed": 0}

    assert [r.error for r in receiver.received] == [None] * 5
    types = [p["type"] for p in receiver.verified()]
    assert types == [
        "lead.created",
        "lead.updated",
        "lead.status_changed",
        "lead.assigned",
        "lead.deleted",
    ]
    created, updated, moved, assigned, deleted = receiver.verified()
    assert created["data"]["lead"]["id"] == lead_id
    assert created["data"]["lead"]["email"] == "eva@example.com"
    assert created["data"]["source"] == "api"
    assert updated["data"] == {
        "lead_id": lead_id,
        "before": {"company": None},
        "after": {"company": "ACME"},
        "source": "api",
    }
    assert (moved["data"]["from_status"], moved["data"]["to_status"]) == ("new", "contacted")
    assert assigned["data"]["to_user_id"] == admin.id
    assert deleted["data"] == {"lead_id": lead_id, "reason": None}
    first = receiver.received[0]
    assert first.headers["webhook-timestamp"] == str(floor(T0.timestamp()))
    assert first.headers["webhook-id"].startswith("msg_")
    assert first.headers["content-type"] == "application/json"
    assert created["timestamp"] == T0.isoformat()

    r = await client.get(f"{API}/{endpoint['id']}/deliveries", headers=admin.headers)
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 5 and page["limit"] == 50 and page["offset"] == 0
    newest = page["items"][0]
    assert newest["event_type"] == "lead.deleted" and newest["status"] == "delivered"
    assert newest["attempts"] == 1 and newest["next_attempt_at"] is None
    assert newest["webhook_id"] == receiver.received[4].headers["webhook-id"]
    [attempt] = newest["attempt_log"]
    assert attempt["success"] is True and attempt["status_code"] == 200
    assert attempt["response_excerpt"] == '{"ok": true, "status": 200}'
    assert attempt["latency_ms"] >= 0 and attempt["error"] is None


async def test_no_endpoint_no_rows_and_unsubscribed_events_skipped(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    receiver: Receiver,
    queue: RecordingQueue,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await _lead(client, admin.headers)
    assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    assert "webhooks.dispatch" not in [n for n, _, _ in queue.items]
    await subscribe(client, admin.headers, receiver, events=["lead.deleted"])
    lead_id = await _lead(client, admin.headers, email="other@example.com")
    assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    await client.delete(f"{LEADS}/{lead_id}", headers=admin.headers)
    rows = list(await session.scalars(select(WebhookDelivery.event_type)))
    assert rows == ["lead.deleted"]


async def test_retries_back_off_then_succeed_and_keep_the_lead_order(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    receiver: Receiver,
    frozen: object,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver)
    lead_a = await _lead(client, admin.headers)
    lead_b = await _lead(client, admin.headers, email="bob@example.com")
    await client.patch(f"{LEADS}/{lead_a}/status", headers=admin.headers, json={"status": "won"})
    receiver.fail_for(f'"id":"{lead_a}"', 503, 500)  # A's created fails twice; B's goes through

    assert await dispatch(jobs) == {"delivered": 1, "failed": 1}
    # A's status change waits behind A's created: one per lead and endpoint at a time (the two
    # leads' deliveries go out together, in either order).
    assert sorted(p["data"]["lead"]["id"] for p in receiver.verified()) == sorted([lead_a, lead_b])
    settings = jobs.settings
    assert backoff(settings, 1) == timedelta(seconds=60)
    assert backoff(settings, 2) == timedelta(seconds=120)
    assert backoff(settings, 20) == timedelta(hours=6)  # capped

    clock.advance(timedelta(seconds=59))
    assert await dispatch(jobs) == {"delivered": 0, "failed": 0}  # not due yet
    clock.advance(timedelta(seconds=1))
    assert await dispatch(jobs) == {"delivered": 0, "failed": 1}  # the second 500
    clock.advance(timedelta(seconds=120))
    assert await dispatch(jobs) == {"delivered": 2, "failed": 0}
    events = [(p["type"], p["data"]["lead"]["id"]) for p in receiver.verified()]
    assert [e for e in events if e[1] == lead_a] == [
        ("lead.created", lead_a),
        ("lead.created", lead_a),
        ("lead.created", lead_a),
        ("lead.status_changed", lead_a),
    ]
    assert [e for e in events if e[1] == lead_b] == [("lead.created", lead_b)]
    # Every attempt was signed with the same webhook-id.
    ids = {
        r.headers["webhook-id"]
        for r in receiver.received
        if r.payload["data"]["lead"]["id"] == lead_a and r.event == "lead.created"
    }
    assert len(ids) == 1
    page = (
        await client.get(
            f"{API}/{endpoint['id']}/deliveries",
            headers=admin.headers,
            params={"status": "delivered"},
        )
    ).json()
    by_type = {(d["event_type"], d["data"]["lead"]["id"]): d for d in page["items"]}
    retried = by_type[("lead.created", lead_a)]
    assert retried["attempts"] == 3
    assert [a["status_code"] for a in retried["attempt_log"]] == [503, 500, 200]
    assert [a["error"] for a in retried["attempt_log"]] == ["HTTP 503", "HTTP 500", None]
    assert [a["attempted_at"] for a in retried["attempt_log"]] == [
        T0.isoformat().replace("+00:00", "Z"),
        (T0 + timedelta(seconds=60)).isoformat().replace("+00:00", "Z"),
        (T0 + timedelta(seconds=180)).isoformat().replace("+00:00", "Z"),
    ]


async def test_sustained_failure_disables_the_endpoint_and_tells_admins(
    client: httpx.AsyncClient,
    app: FastAPI,
    factory: Factory,
    jobs: JobContext,
    session: AsyncSession,
    receiver: Receiver,
    frozen: object,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver)
    lead_id = await _lead(client, admin.headers)
    receiver.reply(*[500] * 50)
    # Attempts left when the endpoint is disabled: the delivery waits for it.
    ctx = JobContext(
        settings=jobs.settings.model_copy(update={"webhooks_max_attempts": 20}),
        session_factory=jobs.session_factory,
    )
    attempts = 0
    while True:
        result = await dispatch(ctx)
        assert result == {"delivered": 0, "failed": 1}
        attempts += 1
        row = await session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]), populate_existing=True)
        assert row is not None
        if row.status == "disabled":
            break
        clock.advance(backoff(ctx.settings, attempts))
    # 60 s doubling (1 + 2 + … + 256 min = 8 h 31 min), then 6 h steps: 24 h of failures are
    # reached with the 13th attempt, 26 h 31 min after the first.
    assert attempts == 13
    assert clock.now() - T0 == timedelta(hours=26, minutes=31)
    admin = await factory.relogin(admin)
    got = (await client.get(f"{API}/{endpoint['id']}", headers=admin.headers)).json()
    assert got["consecutive_failures"] == 13
    assert got["failing_since"] == T0.isoformat().replace("+00:00", "Z")
    assert got["disabled_reason"] == "13 failed attempts in a row since " + T0.isoformat()
    notes = list(
        await session.scalars(select(Notification).where(Notification.kind == "webhook_disabled"))
    )
    assert [n.user_id for n in notes] == [admin.user.id]
    assert notes[0].data == {"endpoint_id": endpoint["id"]}
    # Disabled: nothing is sent any more, the delivery waits.
    clock.advance(timedelta(days=1))
    admin = await factory.relogin(admin)
    before = len(receiver.received)
    assert await dispatch(ctx) == {"delivered": 0, "failed": 0}
    assert len(receiver.received) == before
    # Enabled again: the queued delivery goes out, health starts afresh.
    r = await client.patch(
        f"{API}/{endpoint['id']}", headers=admin.headers, json={"status": "active"}
    )
    assert r.status_code == 200 and r.json()["consecutive_failures"] == 0
    assert r.json()["disabled_reason"] is None
    receiver._replies.clear()
    assert await dispatch(ctx) == {"delivered": 1, "failed": 0}
    assert receiver.verified()[-1]["data"]["lead"]["id"] == lead_id


async def test_a_delivery_out_of_attempts_fails_and_frees_the_line(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    receiver: Receiver,
    frozen: object,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver)
    lead_id = await _lead(client, admin.headers)
    await client.patch(f"{LEADS}/{lead_id}/status", headers=admin.headers, json={"status": "won"})
    ctx = JobContext(
        settings=jobs.settings.model_copy(update={"webhooks_max_attempts": 2}),
        session_factory=jobs.session_factory,
    )
    receiver.reply(500, 500)
    assert await dispatch(ctx) == {"delivered": 0, "failed": 1}
    clock.advance(timedelta(minutes=1))
    # The second failure is the last attempt; the status change behind it goes next.
    assert await dispatch(ctx) == {"delivered": 1, "failed": 1}
    assert [p["type"] for p in receiver.verified()] == [
        "lead.created",
        "lead.created",
        "lead.status_changed",
    ]
    items = (await client.get(f"{API}/{endpoint['id']}/deliveries", headers=admin.headers)).json()[
        "items"
    ]
    assert [(d["event_type"], d["status"], d["attempts"]) for d in items] == [
        ("lead.status_changed", "delivered", 1),
        ("lead.created", "failed", 2),
    ]


async def test_replay_sends_again_with_the_same_id(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    receiver: Receiver,
    frozen: object,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver, events=["lead.created"])
    await _lead(client, admin.headers)
    assert await dispatch(jobs) == {"delivered": 1, "failed": 0}
    [delivery] = (
        await client.get(f"{API}/{endpoint['id']}/deliveries", headers=admin.headers)
    ).json()["items"]
    r = await client.post(f"{API}/deliveries/{delivery['id']}/replay", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["attempts"] == 0
    again = await client.post(f"{API}/deliveries/{delivery['id']}/replay", headers=admin.headers)
    assert again.status_code == 409 and again.json()["code"] == "webhook_delivery_pending"
    assert await dispatch(jobs) == {"delivered": 1, "failed": 0}
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.payload == second.payload
    got = (await client.get(f"{API}/{endpoint['id']}/deliveries", headers=admin.headers)).json()
    assert [len(d["attempt_log"]) for d in got["items"]] == [2]
    # Replaying to a disabled endpoint is refused.
    await client.patch(
        f"{API}/{endpoint['id']}", headers=admin.headers, json={"status": "disabled"}
    )
    r = await client.post(f"{API}/deliveries/{delivery['id']}/replay", headers=admin.headers)
    assert r.status_code == 409 and r.json()["code"] == "webhook_endpoint_disabled"


async def test_test_event_answers_with_the_receivers_reply(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver, frozen: object
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver)
    r = await client.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["delivery"]["event_type"] == "webhook.test"
    assert body["delivery"]["status"] == "delivered"
    [payload] = receiver.verified()
    assert payload["type"] == "webhook.test"
    assert payload["data"]["endpoint_id"] == endpoint["id"]
    receiver.reply(418)
    r = await client.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    body = r.json()
    assert body["success"] is False and body["delivery"]["status"] == "failed"
    assert body["delivery"]["attempt_log"][0]["status_code"] == 418
    # A test does not count against the endpoint's health.
    got = (await client.get(f"{API}/{endpoint['id']}", headers=admin.headers)).json()
    assert got["consecutive_failures"] == 0 and got["status"] == "active"


async def test_a_test_event_cut_off_with_its_request_is_not_sent_by_the_worker(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    receiver: Receiver,
    frozen: object,
) -> None:
    # The request wrote and claimed the test's delivery, then died before sending it (or
    # before recording the answer). Once its claim runs out the worker settles it as failed,
    # and sends neither it nor anything in its name.
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver)
    actor = actor_for_user(admin.user)
    await service.prepare_test(session, jobs.settings, actor, uuid.UUID(endpoint["id"]))
    await session.commit()
    settings = jobs.settings
    assert await dispatch(jobs) == {"delivered": 0, "failed": 0}  # still its request's
    # Past its claim, but the request may still be waiting for a slow answer.
    clock.advance(timedelta(seconds=settings.webhooks_lock_seconds + 1))
    assert await dispatch(jobs) == {"delivered": 0, "failed": 0}
    waiting = await client.get(f"{API}/{endpoint['id']}/deliveries", headers=admin.headers)
    assert waiting.json()["items"][0]["status"] == "pending"
    clock.advance(timedelta(seconds=settings.webhooks_timeout_seconds))
    assert await dispatch(jobs) == {"delivered": 0, "failed": 0}
    assert receiver.received == []
    listed = await client.get(f"{API}/{endpoint['id']}/deliveries", headers=admin.headers)
    [row] = listed.json()["items"]
    assert (row["event_type"], row["status"], row["attempts"]) == ("webhook.test", "failed", 1)
    assert row["last_error"] == delivery.ABANDONED_TEST
    assert [a["error"] for a in row["attempt_log"]] == [delivery.TEST_INTERRUPTED]
    # Later events of the endpoint go out as usual, and a replayed test goes like one.
    await _lead(client, admin.headers)
    assert (await dispatch(jobs))["delivered"] == 1
    replayed = await client.post(f"{API}/deliveries/{row['id']}/replay", headers=admin.headers)
    assert replayed.status_code == 200, replayed.text
    assert (await dispatch(jobs))["delivered"] == 1
    assert [p["type"] for p in receiver.verified()] == ["lead.created", "webhook.test"]


async def test_the_scan_for_abandoned_tests_reads_only_its_partial_index(
    session: AsyncSession, database: Database, conn: AsyncConnection
) -> None:
    # It runs at every dispatch: with an import's deliveries queued it must not read them.
    with sent_statements(database) as seen:
        await repository.fail_abandoned_tests(session, T0, "x")
    [(statement, params)] = [(sql, p) for sql, p in seen if sql.startswith("UPDATE")]
    plan = await plan_of(conn, statement, params)
    assert "ix_webhook_deliveries_test_claims" in plan, plan


async def test_rotation_signs_with_both_secrets_for_a_day(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    receiver: Receiver,
    frozen: object,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver, events=["lead.created"])
    old = endpoint["secret"]
    r = await client.post(f"{API}/{endpoint['id']}/rotate-secret", headers=admin.headers)
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old and new.startswith("whsec_")
    assert r.json()["previous_secret_expires_at"] == (T0 + timedelta(hours=24)).isoformat().replace(
        "+00:00", "Z"
    )
    receiver.secret = new
    await _lead(client, admin.headers)
    await dispatch(jobs)
    sent = receiver.received[-1]
    assert sent.error is None
    assert receiver.verify_with(old, sent)["type"] == "lead.created"  # the old one still works
    assert len(sent.headers["webhook-signature"].split(" ")) == 2
    clock.advance(timedelta(hours=24, seconds=1))
    admin = await factory.relogin(admin)
    await _lead(client, admin.headers, email="later@example.com")
    await dispatch(jobs)
    later = receiver.received[-1]
    assert later.error is None and len(later.headers["webhook-signature"].split(" ")) == 1
    # A chosen secret is accepted; a malformed one is not.
    bad = await client.post(
        f"{API}/{endpoint['id']}/rotate-secret", headers=admin.headers, json={"secret": "nope"}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


async def test_a_target_turned_private_is_refused_at_delivery(
    client: httpx.AsyncClient,
    app: FastAPI,
    factory: Factory,
    jobs: JobContext,
    receiver: Receiver,
    frozen: object,
) -> None:
    """The check runs on every connection: a name that now resolves to a private address (DNS
    rebinding; here: the setting that allowed it is switched off) gets nothing."""
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver, events=["lead.created"])
    await _lead(client, admin.headers)
    strict = JobContext(
        settings=jobs.settings.model_copy(update={"webhooks_allow_private": False}),
        session_factory=jobs.session_factory,
    )
    assert await dispatch(strict) == {"delivered": 0, "failed": 1}
    assert receiver.received == []
    [d] = (await client.get(f"{API}/{endpoint['id']}/deliveries", headers=admin.headers)).json()[
        "items"
    ]
    assert d["status"] == "retry" and d["last_status_code"] is None
    assert d["last_error"] == (
        "target refused: 127.0.0.1 resolves to 127.0.0.1, which is not a public address"
    )


async def _lose_secret(session: AsyncSession, endpoint_id: str) -> None:
    """Store the endpoint's secret as if under a key this server no longer has."""
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == uuid.UUID(endpoint_id))
        .values(secret="v1:not-a-token-of-this-key")
    )


async def test_an_unreadable_secret_is_an_attempt_in_the_log_and_nothing_is_sent(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    receiver: Receiver,
    frozen: object,
) -> None:
    """A secret stored under a key this server no longer has: the claim counts the attempt,
    so the log shows it (not sent), one row per counted attempt."""
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver, events=["lead.created"])
    await _lose_secret(session, endpoint["id"])
    await _lead(client, admin.headers)
    assert await dispatch(jobs) == {"delivered": 0, "failed": 0}
    assert receiver.received == []
    [d] = (await client.get(f"{API}/{endpoint['id']}/deliveries", headers=admin.headers)).json()[
        "items"
    ]
    assert d["attempts"] == 1
    assert [(a["success"], a["status_code"], a["error"]) for a in d["attempt_log"]] == [
        (False, None, SECRET_UNREADABLE)
    ]


async def test_an_endpoint_deleted_while_its_test_runs_is_not_found(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    receiver: Receiver,
    frozen: object,
) -> None:
    """The test's attempt row goes with the endpoint; recording the answer then finds no
    delivery (a 404), where inserting the attempt failed on its foreign key."""
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver)
    actor = actor_for_user(admin.user)
    out = await service.prepare_test(session, jobs.settings, actor, uuid.UUID(endpoint["id"]))
    async with delivery.client_for(jobs.settings) as http:
        outcome = await delivery.send(http, out)
    assert outcome.success
    await service.delete_endpoint(session, actor, out.endpoint_id)
    with pytest.raises(NotFound):
        await service.finish_test(session, jobs.settings, outcome)


async def test_a_test_event_that_cannot_be_signed_is_a_clear_503(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    receiver: Receiver,
    frozen: object,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(client, admin.headers, receiver)
    await _lose_secret(session, endpoint["id"])
    r = await client.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "webhook_secret_unreadable"
    assert receiver.received == []
    listed = await client.get(f"{API}/{endpoint['id']}/deliveries", headers=admin.headers)
    assert listed.json()["total"] == 0
    # A new secret mends it at once: the unreadable one does not linger as the previous.
    rotated = await client.post(f"{API}/{endpoint['id']}/rotate-secret", headers=admin.headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["previous_secret_expires_at"] is None
    receiver.secret = rotated.json()["secret"]
    r = await client.post(f"{API}/{endpoint['id']}/test", headers=admin.headers)
    assert r.status_code == 200 and r.json()["success"] is True, r.text
