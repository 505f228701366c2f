"""Invitations: a one-time link to set a password, emailed through the outbox, valid 72 hours,
stored only as a hash; `POST /api/v1/auth/accept-invite` completes it."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.invitations import INVITATION_KIND
from leadflow.config import Settings
from leadflow.kit.clock import clock
from leadflow.models.audit_log import AuditLog
from leadflow.models.invitation import Invitation
from leadflow.models.outbox import OutboxMessage
from leadflow.models.user import User
from leadflow.worker import outbox
from leadflow.worker.jobs import JobContext
from tests.accounts.helpers import ADMIN_USERS, count, latest_invitation, token_of
from tests.fixtures.factories import Factory, Member
from tests.fixtures.smtp import Inbox, smtp  # noqa: F401

ACCEPT = "/api/v1/auth/accept-invite"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NEW_PASSWORD = "a-fresh-password-1"


async def _invite(client: httpx.AsyncClient, admin: Member, email: str) -> dict[str, object]:
    r = await client.post(
        ADMIN_USERS,
        headers=admin.headers,
        json={
            "full_name": "Nina Neu",
            "email": email,
            "role": "counselor",
            "send_invite": True,
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


async def test_the_emailed_link_sets_the_password_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    smtp: tuple[int, Inbox],  # noqa: F811
) -> None:
    port, inbox = smtp
    app.state.settings.smtp_host, app.state.settings.smtp_port = "127.0.0.1", port
    clock.freeze(START)
    org = await factory.org("Kramer Vertrieb")
    admin = await factory.member(org)
    created = await _invite(client, admin, "Nina@Example.com")
    assert created["invite_sent"] is True
    assert created["invite_expires_at"] == "2026-03-05T09:00:00Z"

    # Nothing stored can be used as the link: the invitation keeps a hash, the outbox row the
    # email's context without it.
    invitation = await latest_invitation(session, str(created["user_id"]))
    [row] = (
        await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == INVITATION_KIND))
    ).all()
    assert "accept-invite" not in json.dumps(row.payload)
    assert row.payload["to"] == "nina@example.com"
    assert row.payload["subject"] == "Einladung zu Kramer Vertrieb bei Leadflow"

    assert await outbox.relay(jobs) == 1
    assert inbox.wait_for(1)
    [mail] = inbox.messages
    assert (mail["To"], mail["Subject"]) == (
        "nina@example.com",
        "Einladung zu Kramer Vertrieb bei Leadflow",
    )
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    match = re.search(r"http://127\.0\.0\.1:8000/accept-invite\?token=([A-Za-z0-9_-]{43})\s", text)
    assert match is not None, text
    token = match.group(1)
    assert hashlib.sha256(token.encode()).hexdigest() == invitation.token_hash
    assert "hat Sie eingeladen, Kramer Vertrieb bei Leadflow beizutreten" in text
    assert "Er gilt bis 05.03.2026 10:00 (Europe/Berlin) und lässt sich einmal verwenden." in text
    # The admin's email log never shows the link.
    emails = (await client.get("/api/v1/admin/emails", headers=admin.headers)).json()
    assert token not in json.dumps(emails)

    r = await client.post(ACCEPT, json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    pair = r.json()
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert (me.json()["email"], me.json()["role"]) == ("nina@example.com", "counselor")
    login = await client.post(
        "/api/v1/auth/login", json={"email": "nina@example.com", "password": NEW_PASSWORD}
    )
    assert login.status_code == 200

    # Single use: the same link again changes nothing.
    r = await client.post(ACCEPT, json={"token": token, "password": "another-password-2"})
    assert (r.status_code, r.json()["code"]) == (410, "invitation_used")
    login = await client.post(
        "/api/v1/auth/login", json={"email": "nina@example.com", "password": NEW_PASSWORD}
    )
    assert login.status_code == 200
    audits = (
        await session.execute(
            select(AuditLog.action, AuditLog.actor_user_id)
            .where(AuditLog.organization_id == org.id)
            .order_by(AuditLog.created_at, AuditLog.id)
        )
    ).all()
    nina = str(created["user_id"])
    assert [(a, str(u)) for a, u in audits] == [
        ("user.create", admin.id),
        ("user.invite", admin.id),
        ("user.accept_invite", nina),
        ("auth.login", nina),
        ("auth.login", nina),
    ]


async def test_the_link_expires_after_72_hours(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, settings: Settings
) -> None:
    clock.freeze(START)
    org = await factory.org()
    admin = await factory.member(org)
    early = await _invite(client, admin, "early@example.com")
    late = await _invite(client, admin, "late@example.com")
    early_token = await token_of(session, settings, str(early["user_id"]))
    late_token = await token_of(session, settings, str(late["user_id"]))

    clock.advance(timedelta(hours=72) - timedelta(seconds=1))
    r = await client.post(ACCEPT, json={"token": early_token, "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    clock.advance(timedelta(seconds=1))  # exactly 72 hours
    r = await client.post(ACCEPT, json={"token": late_token, "password": NEW_PASSWORD})
    assert (r.status_code, r.json()["code"]) == (410, "invitation_expired")
    assert r.headers["content-type"].startswith("application/problem+json")
    fresh = await session.scalar(
        select(User)
        .where(User.email == "late@example.com")
        .execution_options(populate_existing=True)
    )
    assert fresh is not None and fresh.password_hash is None
    assert (await latest_invitation(session, fresh.id)).used_at is None


async def test_a_new_link_replaces_the_old_and_is_only_for_members_without_password(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, settings: Settings
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    created = await _invite(client, admin, "twice@example.com")
    user_id = str(created["user_id"])
    first = await token_of(session, settings, user_id)
    r = await client.post(f"{ADMIN_USERS}/{user_id}/invite", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["invite_sent"] is True
    second = await token_of(session, settings, user_id)
    assert first != second
    r = await client.post(ACCEPT, json={"token": first, "password": NEW_PASSWORD})
    assert (r.status_code, r.json()["code"]) == (400, "invitation_invalid")
    assert (
        await client.post(ACCEPT, json={"token": second, "password": NEW_PASSWORD})
    ).status_code == 200
    # Onboarded: an invitation would be a password reset by the admin.
    r = await client.post(f"{ADMIN_USERS}/{user_id}/invite", headers=admin.headers)
    assert (r.status_code, r.json()["code"]) == (409, "invitation_not_needed")
    assert await count(session, Invitation, Invitation.user_id == uuid.UUID(user_id)) == 2
    assert await count(session, OutboxMessage, OutboxMessage.kind == INVITATION_KIND) == 2


async def test_deactivation_and_an_email_change_withdraw_the_link(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, settings: Settings
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    moved = await _invite(client, admin, "moved@example.com")
    moved_token = await token_of(session, settings, str(moved["user_id"]))
    r = await client.patch(
        f"{ADMIN_USERS}/{moved['user_id']}",
        headers=admin.headers,
        json={"email": "new@example.com"},
    )
    assert r.status_code == 200
    r = await client.post(ACCEPT, json={"token": moved_token, "password": NEW_PASSWORD})
    assert (r.status_code, r.json()["code"]) == (400, "invitation_invalid")

    left = await _invite(client, admin, "left@example.com")
    left_token = await token_of(session, settings, str(left["user_id"]))
    assert (
        await client.delete(f"{ADMIN_USERS}/{left['user_id']}", headers=admin.headers)
    ).status_code == 200
    r = await client.post(ACCEPT, json={"token": left_token, "password": NEW_PASSWORD})
    assert (r.status_code, r.json()["code"]) == (400, "invitation_invalid")
    r = await client.post(f"{ADMIN_USERS}/{left['user_id']}/invite", headers=admin.headers)
    assert (r.status_code, r.json()["code"]) == (409, "user_inactive")
    passwords = await session.scalars(
        select(User.password_hash).where(User.email.in_(["new@example.com", "left@example.com"]))
    )
    assert list(passwords) == [None, None]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"token": "x" * 43, "password": NEW_PASSWORD}, 400, "invitation_invalid"),
        ({"token": "", "password": NEW_PASSWORD}, 422, "validation_error"),
        ({"token": "x" * 201, "password": NEW_PASSWORD}, 422, "validation_error"),
        ({"token": "VALID", "password": "short"}, 422, "validation_error"),
        ({"token": "VALID", "password": "p" * 257}, 422, "validation_error"),
        ({"token": "VALID"}, 422, "validation_error"),
        ({"token": None, "password": NEW_PASSWORD}, 422, "validation_error"),
        ({"token": "VALID", "password": NEW_PASSWORD, "role": "admin"}, 422, "validation_error"),
    ],
)
async def test_accept_bad_input_sets_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    settings: Settings,
    payload: dict[str, object],
    status: int,
    code: str,
) -> None:
    admin = await factory.member(await factory.org())
    created = await _invite(client, admin, "bad@example.com")
    if payload.get("token") == "VALID":
        payload = {**payload, "token": await token_of(session, settings, str(created["user_id"]))}
    r = await client.post(ACCEPT, json=payload)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    user = await session.scalar(
        select(User)
        .where(User.email == "bad@example.com")
        .execution_options(populate_existing=True)
    )
    assert user is not None and user.password_hash is None
    assert (await latest_invitation(session, user.id)).used_at is None
