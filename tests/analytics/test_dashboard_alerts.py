"""Dashboard (seed 004) and alerts: the state of the organisation in `world.py` at `NOW`,
for each role's scope, on both engines."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from leadflow.models.organization import Organization
from leadflow.models.outbox import OutboxMessage
from tests.analytics.world import World, build, by_user, utc
from tests.fixtures.factories import Factory

METRICS = "/api/v1/dashboard/metrics"
PER_ASSIGNEE = "/api/v1/dashboard/leads-per-assignee"
ALERTS = "/api/v1/analytics/alerts"


def _statuses(body: dict[str, Any]) -> dict[str, int]:
    return {s["status"]: s["count"] for s in body["by_status"]}


async def test_metrics_by_role(client: httpx.AsyncClient, factory: Factory) -> None:
    w = await build(client, factory)
    admin = await w.get("admin", METRICS)
    assert [s["status"] for s in admin["by_status"]] == [
        "new",
        "contacted",
        "qualified",
        "proposal",
        "won",
        "lost",
    ]
    assert _statuses(admin) == {
        "new": 6,  # L0 L4 L6 L7 L8 L9
        "contacted": 0,
        "qualified": 0,
        "proposal": 1,
        "won": 2,
        "lost": 1,
    }
    assert {k: v for k, v in admin.items() if k != "by_status"} == {
        "timezone": "Europe/Berlin",
        "total_leads": 10,
        "assigned": 5,  # L1 L2 L9 (c1), L3 (c2), L4 (c3)
        "unassigned": 5,
        # Today began at 04-09 22:00 UTC (midnight in Berlin): L7 (22:30 UTC) and L9.
        "new_today": 2,
        # The week began on Monday 04-06 00:00 Berlin (04-05 22:00 UTC): and L8.
        "new_this_week": 3,
        "sla_at_risk": 1,  # L9: past its reminder (11:45), deadline 12:15 ahead
        "sla_breached": 1,  # L4; L3 was answered, late
    }
    manager = await w.get("manager", METRICS)
    assert _statuses(manager) == {
        "new": 1,
        "contacted": 0,
        "qualified": 0,
        "proposal": 1,
        "won": 2,
        "lost": 0,
    }
    assert (manager["total_leads"], manager["assigned"], manager["unassigned"]) == (4, 4, 0)
    assert (manager["new_today"], manager["new_this_week"]) == (1, 1)
    assert (manager["sla_at_risk"], manager["sla_breached"]) == (1, 0)
    c3 = await w.get("c3", METRICS)
    assert (c3["total_leads"], c3["sla_breached"], _statuses(c3)["new"]) == (1, 1, 1)
    other = await w.get("other", METRICS)
    assert (other["total_leads"], _statuses(other)["won"]) == (1, 1)


async def test_metrics_alias_and_status_without_stage(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    w = await build(client, factory)
    # A status no stage has (as an old import could leave it) still counts, after the stages.
    lead = await session.get(Lead, uuid.UUID(w.leads["L0"]))
    assert lead is not None
    lead.status = "Altkunde"
    await session.commit()
    r = await client.get("/api/dashboard/metrics", headers=w.members["admin"].headers)
    assert r.status_code == 200 and r.json()["total_leads"] == 10
    assert r.json()["by_status"][-2:] == [
        {"status": "lost", "name": "Lost", "category": "lost", "count": 1},
        {"status": "Altkunde", "name": "Altkunde", "category": None, "count": 1},
    ]
    assert _statuses(r.json())["new"] == 5
    r = await client.get("/api/dashboard/leads-per-assignee", headers=w.members["admin"].headers)
    assert r.status_code == 200 and len(r.json()) == 5


async def test_leads_per_assignee(client: httpx.AsyncClient, factory: Factory) -> None:
    w = await build(client, factory)
    zero = {
        "open": 0,
        "won": 0,
        "breached": 0,
        "capacity": None,
        "load_percent": None,
        "at_capacity": False,
    }
    c1 = {
        "open": 1,
        "won": 2,
        "breached": 0,
        "capacity": 2,
        "load_percent": 50.0,
        "at_capacity": False,
    }
    c2 = {**zero, "open": 1}
    c3 = {
        "open": 1,
        "won": 0,
        "breached": 1,
        "capacity": 1,
        "load_percent": 100.0,
        "at_capacity": True,
    }
    assert by_user(await w.get("admin", PER_ASSIGNEE)) == {
        w.uid("admin"): zero,
        w.uid("manager"): zero,
        w.uid("c1"): c1,
        w.uid("c2"): c2,
        w.uid("c3"): c3,
    }
    assert by_user(await w.get("manager", PER_ASSIGNEE)) == {
        w.uid("manager"): zero,
        w.uid("c1"): c1,
        w.uid("c2"): c2,
    }
    assert by_user(await w.get("c2", PER_ASSIGNEE)) == {w.uid("c2"): c2}


async def _failures(w: World, session: AsyncSession) -> uuid.UUID:
    """A failed email, a failed webhook job and a failed import of the admin's (its id)."""
    org_id = w.members["admin"].user.organization_id
    batch = ImportBatch(
        organization_id=org_id,
        created_by=w.members["admin"].user.id,
        status="failed",
        filename="kunden.csv",
        failure="the file could not be read",
        finished_at=utc(4, 7, 10),
    )
    session.add_all(
        [
            batch,
            OutboxMessage(
                organization_id=org_id,
                kind="email",
                delivery_key=f"test-email-{uuid.uuid4()}",
                payload={"to": "lea@example.com", "subject": "Hallo"},
                status="failed",
                attempts=3,
                last_error="SMTPRecipientsRefused: 550",
                next_attempt_at=utc(4, 9, 10),
                created_at=utc(4, 9, 9),
            ),
            OutboxMessage(
                organization_id=org_id,
                kind="webhook",
                delivery_key=f"test-hook-{uuid.uuid4()}",
                payload={},
                status="failed",
                attempts=3,
                last_error="HTTP 500",
                next_attempt_at=utc(4, 8, 10),
                created_at=utc(4, 8, 9),
            ),
        ]
    )
    await session.commit()
    return batch.id


async def test_alerts_by_role(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    w = await build(client, factory)
    batch_id = await _failures(w, session)
    admin = await w.get("admin", ALERTS)
    lead = w.leads
    assert [(a["type"], a["severity"], a["link"], a["created_at"]) for a in admin] == [
        ("sla_breached", "critical", f"/api/v1/leads/{lead['L4']}", "2026-03-30T08:00:00Z"),
        ("sla_at_risk", "warning", f"/api/v1/leads/{lead['L9']}", "2026-04-10T11:45:00Z"),
        ("email_failed", "warning", "/api/v1/admin/emails?status=failed", "2026-04-09T10:00:00Z"),
        ("job_failed", "warning", "/api/v1/admin/jobs?status=failed", "2026-04-08T10:00:00Z"),
        ("import_failed", "warning", f"/api/v1/imports/{batch_id}", "2026-04-07T10:00:00Z"),
        # Open leads without contact for 7 days: since last contact (L3) or creation.
        ("lead_untouched", "info", f"/api/v1/leads/{lead['L6']}", "2026-04-07T22:30:00Z"),
        ("lead_untouched", "info", f"/api/v1/leads/{lead['L3']}", "2026-04-06T12:00:00Z"),
        ("lead_untouched", "info", f"/api/v1/leads/{lead['L4']}", "2026-04-05T22:30:00Z"),
        ("lead_untouched", "info", f"/api/v1/leads/{lead['L0']}", "2026-03-07T23:30:00Z"),
    ]  # fmt: skip
    assert admin[0]["title"] == "SLA breached: L4"
    assert admin[2]["title"] == "Delivery failed: email to lea@example.com"
    assert admin[2]["description"] == "SMTPRecipientsRefused: 550"
    assert admin[4]["description"] == "the file could not be read"
    assert admin[5]["title"] == "Untouched for 7 days: L6"
    assert [a["type"] for a in await w.get("admin", ALERTS, limit=3)] == [
        "sla_breached",
        "sla_at_risk",
        "email_failed",
    ]
    # The manager: the team's leads; no deliveries (not an admin), no import of the team's.
    manager = await w.get("manager", ALERTS)
    assert [(a["type"], a["link"]) for a in manager] == [
        ("sla_at_risk", f"/api/v1/leads/{lead['L9']}"),
        ("lead_untouched", f"/api/v1/leads/{lead['L3']}"),
    ]
    c1 = await w.get("c1", ALERTS)
    assert [(a["type"], a["link"]) for a in c1] == [("sla_at_risk", f"/api/v1/leads/{lead['L9']}")]
    assert await w.get("other", ALERTS) == []  # its lead was won


async def test_untouched_days_is_a_setting(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    w = await build(client, factory)
    r = await client.patch(
        "/api/v1/admin/settings",
        headers=w.members["admin"].headers,
        json={"untouched_alert_days": 11},
    )
    assert r.status_code == 200 and r.json()["untouched_alert_days"] == 11
    untouched = [a for a in await w.get("admin", ALERTS) if a["type"] == "lead_untouched"]
    # Cutoff 03-30 12:00 UTC: L3 (last called exactly then), L4 (created 03-29 22:30), L0.
    assert [(a["link"], a["title"]) for a in untouched] == [
        (f"/api/v1/leads/{w.leads['L3']}", "Untouched for 11 days: L3"),
        (f"/api/v1/leads/{w.leads['L4']}", "Untouched for 11 days: L4"),
        (f"/api/v1/leads/{w.leads['L0']}", "Untouched for 11 days: L0"),
    ]
    for bad in (0, 366, None):
        r = await client.patch(
            "/api/v1/admin/settings",
            headers=w.members["admin"].headers,
            json={"untouched_alert_days": bad},
        )
        assert r.status_code == 422, r.text
    org = await session.get(Organization, w.members["admin"].user.organization_id)
    assert org is not None and org.settings["untouched_alert_days"] == 11
