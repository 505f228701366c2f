"""Where the other events come from: an import (its leads and `import.completed`, set-based),
a merge, a completed task, an SLA breach, a call request's progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock
from leadflow.models.lead import Lead
from leadflow.models.webhook import WebhookBatch, WebhookDelivery
from leadflow.sla import service as sla
from leadflow.webhooks.delivery import dispatch
from leadflow.worker.jobs import JobContext, run_job
from tests.calls.conftest import submit
from tests.fixtures.factories import Factory
from tests.webhooks.conftest import subscribe
from tests.webhooks.receiver import Receiver


async def test_an_import_owes_one_delivery_per_lead_and_announces_its_end(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    receiver: Receiver,
    frozen: object,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await subscribe(client, admin.headers, receiver, events=["lead.created", "import.completed"])
    rows = [{"Vorname": f"Neu{i}", "E-Mail": f"neu{i}@example.com"} for i in range(30)]
    r = await client.post("/api/v1/leads/import", headers=admin.headers, json=rows)
    assert r.status_code == 200 and r.json()["imported_count"] == 30
    batch_id = r.json()["import_batch_id"]
    counts = dict(
        (
            await session.execute(
                select(WebhookDelivery.event_type, func.count()).group_by(
                    WebhookDelivery.event_type
                )
            )
        ).all()
    )
    assert counts == {"lead.created": 30, "import.completed": 1}
    assert await dispatch(jobs) == {"delivered": 31, "failed": 0}
    created = [p for p in receiver.verified() if p["type"] == "lead.created"]
    assert sorted(p["data"]["lead"]["email"] for p in created) == sorted(
        f"neu{i}@example.com" for i in range(30)
    )
    assert {p["data"]["source"] for p in created} == {"import"}
    assert {p["data"]["lead"]["import_batch_id"] for p in created} == {batch_id}
    [done] = [p for p in receiver.verified() if p["type"] == "import.completed"]
    assert done["data"]["import_id"] == batch_id
    assert done["data"]["status"] == "completed"
    assert done["data"]["imported_count"] == 30 and done["data"]["total_rows"] == 30


async def test_merge_task_sla_and_call_events(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    receiver: Receiver,
) -> None:
    clock.freeze(datetime(2026, 3, 3, 9, 0, tzinfo=UTC))  # Tuesday 10:00 Berlin
    org = await factory.org()
    admin = await factory.member(org)
    await subscribe(
        client,
        admin.headers,
        receiver,
        events=["lead.merged", "task.completed", "sla.breached", "call_request.updated"],
    )
    keep = await factory.lead(org, email="eva@example.com")
    other = await factory.lead(org, email="eva.k@example.com")
    r = await client.post(
        f"/api/v1/leads/{keep.id}/merge",
        headers=admin.headers,
        json={"other_ids": [str(other.id)]},
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/api/v1/tasks", headers=admin.headers, json={"title": "Anrufen", "lead_id": str(keep.id)}
    )
    task_id = r.json()["id"]
    assert (
        await client.post(f"/api/v1/tasks/{task_id}/complete", headers=admin.headers)
    ).status_code == 200
    late = await factory.lead(org, email="late@example.com")
    await client.post(
        f"/api/v1/leads/{late.id}/assign", headers=admin.headers, json={"assignee_id": admin.id}
    )
    result = await sla.check(session, app.state.settings, datetime(2026, 3, 3, 14, 0, tzinfo=UTC))
    assert result["breached"] == 1
    await session.commit()
    accepted = await submit(client, admin.headers)
    assert await run_job(jobs, "calls.process", accepted["id"]) == "booked"

    await dispatch(jobs)
    by_type: dict[str, list[Any]] = {}
    for p in receiver.verified():
        by_type.setdefault(p["type"], []).append(p["data"])
    assert by_type["lead.merged"] == [{"survivor_id": str(keep.id), "merged_ids": [str(other.id)]}]
    [task] = by_type["task.completed"]
    assert task["task"]["id"] == task_id and task["task"]["lead_id"] == str(keep.id)
    assert task["task"]["completed_by"] == admin.id
    [breach] = by_type["sla.breached"]
    assert breach["lead_id"] == str(late.id) and breach["assignee_id"] == admin.id
    assert breach["sla_breached_at"] == "2026-03-03T14:00:00+00:00"
    statuses = [c["call_request"]["status"] for c in by_type["call_request.updated"]]
    assert statuses == ["queued", "calling", "in_progress", "in_progress", "booked"]
    assert {c["call_request"]["id"] for c in by_type["call_request.updated"]} == {accepted["id"]}


async def test_a_large_chunk_is_one_batch_row_and_keeps_each_leads_order(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    receiver: Receiver,
    frozen: object,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    endpoint = await subscribe(
        client, admin.headers, receiver, events=["lead.created", "lead.updated"]
    )
    rows = [{"Vorname": f"Viel{i}", "E-Mail": f"viel{i}@example.com"} for i in range(150)]
    r = await client.post("/api/v1/leads/import", headers=admin.headers, json=rows)
    assert r.status_code == 200 and r.json()["imported_count"] == 150
    batches = list(await session.scalars(select(WebhookBatch)))
    assert [(b.event_type, b.size, str(b.endpoint_id)) for b in batches] == [
        ("lead.created", 150, endpoint["id"])
    ]
    assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    # A change of one of them right after: its delivery must not overtake the lead's created.
    lead_id = str(await session.scalar(select(Lead.id).where(Lead.email == "viel7@example.com")))
    r = await client.patch(
        f"/api/v1/leads/{lead_id}", headers=admin.headers, json={"company": "ACME", "version": 1}
    )
    assert r.status_code == 200, r.text
    # The batch is expanded before anything of the endpoint goes out.
    ctx = JobContext(
        settings=jobs.settings.model_copy(update={"webhooks_batch_size": 7}),
        session_factory=jobs.session_factory,
    )
    assert await dispatch(ctx) == {"delivered": 151, "failed": 0}
    assert await session.scalar(select(func.count()).select_from(WebhookBatch)) == 0
    mine = [
        p["type"]
        for p in receiver.verified()
        if p["data"].get("lead_id") == lead_id or p["data"].get("lead", {}).get("id") == lead_id
    ]
    assert mine == ["lead.created", "lead.updated"]
    created = [p for p in receiver.verified() if p["type"] == "lead.created"]
    assert len({p["data"]["lead"]["id"] for p in created}) == 150
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(ids) == 151
