"""Outbox deliveries: enqueue after commit, logged without SMTP, sent once, retried, failed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import leadflow.notifications.jobs  # noqa: F401  (registers the email delivery handler)
from leadflow.kit.clock import clock, utcnow
from leadflow.models.outbox import Notification, OutboxMessage
from leadflow.worker import outbox
from leadflow.worker.jobs import JobContext, RecordingQueue
from tests.fixtures.factories import Factory
from tests.fixtures.smtp import Inbox, free_port, serving, smtp  # noqa: F401


async def _assign(
    client: httpx.AsyncClient, headers: dict[str, str], lead_id: object, user_id: object
) -> httpx.Response:
    return await client.post(
        f"/api/v1/leads/{lead_id}/assign", headers=headers, json={"assignee_id": str(user_id)}
    )


async def _queued_email(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> tuple[Any, OutboxMessage]:
    """An admin, and the email an assignment by that admin queued for a rep."""
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    lead = await factory.lead(org)
    await _assign(client, admin.headers, lead.id, rep.id)
    row = await session.scalar(select(OutboxMessage))
    assert row is not None
    return admin, row


async def test_assignment_queues_email_after_commit_and_logs_without_smtp(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    queue: RecordingQueue,
    session: AsyncSession,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    lead = await factory.lead(org)
    r = await _assign(client, admin.headers, lead.id, rep.id)
    assert r.status_code == 200
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "email"))
    assert row is not None and row.status == "pending"
    assert row.payload["to"] == rep.email and row.payload["template"] == "lead_assigned"
    assert ("outbox.deliver", (str(row.id),), None) in queue.items
    note = await session.scalar(select(Notification).where(Notification.user_id == rep.id))
    assert note is not None and note.kind == "lead_assigned"
    assert await outbox.deliver(jobs, str(row.id)) == "logged"
    assert await outbox.deliver(jobs, str(row.id)) == "skipped"  # idempotent
    emails = (await client.get("/api/v1/admin/emails", headers=admin.headers)).json()
    assert emails["total"] == 1
    assert emails["items"][0]["status"] == "logged"
    assert emails["items"][0]["to"] == rep.email
    assert "Lead" in emails["items"][0]["subject"]


async def test_failed_request_enqueues_nothing(
    client: httpx.AsyncClient, factory: Factory, queue: RecordingQueue, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    lead = await factory.lead(org)
    r = await client.patch(
        f"/api/v1/leads/{lead.id}",
        headers=admin.headers,
        json={"assignee_id": str(rep.id), "phone": "not a phone"},
    )
    assert r.status_code == 422
    assert queue.items == []
    assert await session.scalar(select(OutboxMessage)) is None


async def test_smtp_delivery_exactly_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    smtp: tuple[int, Inbox],  # noqa: F811
) -> None:
    port, inbox = smtp
    app.state.settings.smtp_host = "127.0.0.1"
    app.state.settings.smtp_port = port
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    lead = await factory.lead(org, first_name="Jürgen", last_name="Öztürk")
    await _assign(client, admin.headers, lead.id, rep.id)
    assert await outbox.relay(jobs) == 1
    assert await outbox.relay(jobs) == 0
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["To"] == rep.email
    assert "Jürgen Öztürk" in str(msg["Subject"])
    assert msg["X-Leadflow-Delivery-Key"].startswith("lead-assigned:")
    r = await client.post(f"/api/v1/leads/{lead.id}/resend-email", headers=admin.headers)
    assert r.status_code == 202
    assert await outbox.relay(jobs) == 1
    assert len(inbox.messages) == 2
    emails = (
        await client.get("/api/v1/admin/emails", headers=admin.headers, params={"status": "sent"})
    ).json()
    assert emails["total"] == 2 and all(e["message_id"] for e in emails["items"])


async def test_retries_then_fails_and_tells_admins(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    session: AsyncSession,
    smtp: tuple[int, Inbox],  # noqa: F811
) -> None:
    clock.freeze(utcnow())
    app.state.settings.smtp_host = "127.0.0.1"
    app.state.settings.smtp_port = free_port()  # nobody listens
    admin, row = await _queued_email(client, factory, session)
    assert await outbox.deliver(jobs, str(row.id)) == "retry"
    assert await outbox.deliver(jobs, str(row.id)) == "skipped"  # backoff not over yet
    clock.advance(timedelta(seconds=31))
    assert await outbox.deliver(jobs, str(row.id)) == "retry"
    clock.advance(timedelta(seconds=61))
    assert await outbox.deliver(jobs, str(row.id)) == "failed"
    admin = await factory.relogin(admin)
    failed = (
        await client.get("/api/v1/admin/jobs", headers=admin.headers, params={"status": "failed"})
    ).json()
    assert failed["total"] == 1 and failed["items"][0]["attempts"] == 3
    assert failed["items"][0]["last_error"]
    # Every attempt's reason is kept, not only the last one's.
    logged = failed["items"][0]["errors"]
    assert [e["attempt"] for e in logged] == [1, 2, 3]
    assert all("SMTP delivery failed" in e["error"] for e in logged), logged
    assert logged[-1]["error"] in failed["items"][0]["last_error"]
    alerts = (
        await client.get("/api/v1/notifications", headers=admin.headers, params={"unread": "true"})
    ).json()
    assert [n["kind"] for n in alerts["items"]] == ["email_failed"]
    # Fix SMTP, retry from the admin API: delivered.
    port, inbox = smtp
    app.state.settings.smtp_port = port
    r = await client.post(f"/api/v1/admin/jobs/{row.id}/retry", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "retry"
    assert await outbox.relay(jobs) == 1
    assert len(inbox.messages) == 1
    sent = (await client.get("/api/v1/admin/emails", headers=admin.headers)).json()["items"]
    assert [(e["status"], e["last_error"], len(e["errors"])) for e in sent] == [("sent", None, 3)]
    again = await client.post(f"/api/v1/admin/jobs/{row.id}/retry", headers=admin.headers)
    assert again.status_code == 409


async def test_admin_views_are_admin_only_and_tenant_scoped(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor")
    other_admin = await factory.member(other)
    lead = await factory.lead(org)
    await _assign(client, admin.headers, lead.id, rep.user.id)
    row = await session.scalar(select(OutboxMessage))
    assert row is not None
    for url in ("/api/v1/admin/jobs", "/api/v1/admin/emails"):
        assert (await client.get(url, headers=rep.headers)).status_code == 403
        assert (await client.get(url, headers=other_admin.headers)).json()["total"] == 0
    assert (
        await client.post(f"/api/v1/admin/jobs/{row.id}/retry", headers=other_admin.headers)
    ).status_code == 404
    no_assignee = await factory.lead(org)
    r = await client.post(f"/api/v1/leads/{no_assignee.id}/resend-email", headers=admin.headers)
    assert r.status_code == 409


class _StallingInbox(Inbox):
    """Holds each DATA reply until `release` is set, at most 3 s: slower than the test's
    timeout, faster than the default one."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 3)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def stalling_smtp() -> Iterator[tuple[int, _StallingInbox]]:
    """(port, inbox) of an SMTP server that holds its DATA replies."""
    inbox = _StallingInbox()
    with serving(inbox) as port:
        try:
            yield port, inbox
        finally:
            inbox.release.set()  # the server's stop waits for a held reply


async def test_a_reply_later_than_the_smtp_timeout_is_a_failed_attempt(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    session: AsyncSession,
    stalling_smtp: tuple[int, _StallingInbox],
) -> None:
    port, inbox = stalling_smtp
    clock.freeze(utcnow())
    app.state.settings.smtp_host = "127.0.0.1"
    app.state.settings.smtp_port = port
    app.state.settings.smtp_timeout_seconds = 0.5
    _, row = await _queued_email(client, factory, session)
    assert await outbox.deliver(jobs, str(row.id)) == "retry"
    await session.refresh(row)
    assert "SMTP delivery failed" in (row.last_error or ""), row.last_error
    # A relay that answers within a longer timeout: the next attempt is sent.
    inbox.release.set()
    app.state.settings.smtp_timeout_seconds = 30
    clock.advance(timedelta(seconds=31))
    assert await outbox.deliver(jobs, str(row.id)) == "sent"
