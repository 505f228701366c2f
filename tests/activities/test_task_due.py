"""Tasks falling due notify their assignee once (in-app and email)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock
from leadflow.models.outbox import Notification, OutboxMessage
from leadflow.tasks.service import notify_due
from tests.fixtures.factories import Factory

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_due_tasks_notify_once_and_again_after_rescheduling(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    clock.freeze(NOW)
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    lead = await factory.lead(org, assignee_id=rep.user.id, first_name="Ute", last_name="Due")
    due = (
        await client.post(
            "/api/v1/tasks",
            headers=rep.headers,
            json={
                "title": "Rückruf Ute",
                "lead_id": str(lead.id),
                "due_at": (NOW + timedelta(minutes=5)).isoformat(),
            },
        )
    ).json()
    later = await client.post(
        "/api/v1/tasks",
        headers=rep.headers,
        json={"title": "Später", "due_at": (NOW + timedelta(days=2)).isoformat()},
    )
    assert later.status_code == 201
    settings = app.state.settings

    async def count(kind: str) -> int:
        return int(
            await session.scalar(
                select(func.count()).select_from(Notification).where(Notification.kind == kind)
            )
            or 0
        )

    assert await notify_due(session, settings, NOW) == 0
    assert await notify_due(session, settings, NOW + timedelta(minutes=6)) == 1
    assert await notify_due(session, settings, NOW + timedelta(minutes=7)) == 0
    assert await count("task_due") == 1
    email = await session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "email"))
    assert email is not None and email.payload["template"] == "task_due"
    assert "Rückruf Ute" in email.payload["text"]
    clock.freeze(NOW + timedelta(minutes=8))
    rep = await factory.relogin(rep)
    r = await client.patch(
        f"/api/v1/tasks/{due['id']}",
        headers=rep.headers,
        json={"due_at": (NOW + timedelta(hours=1)).isoformat()},
    )
    assert r.status_code == 200
    assert await notify_due(session, settings, NOW + timedelta(hours=2)) == 1
    assert await count("task_due") == 2
