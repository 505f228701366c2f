"""Schedules: due times (time zones, DST, month ends), the API, one run per due time however
many workers claim it, and the mailed attachment received by a real SMTP server."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.db.engine import Database, session_scope
from leadflow.kit.clock import clock
from leadflow.models.outbox import OutboxMessage
from leadflow.models.report import Report, ReportRun, ReportSchedule
from leadflow.models.user import User
from leadflow.organizations import repository as org_repo
from leadflow.organizations.service import create_organization
from leadflow.reports import repository, service
from leadflow.reports.jobs import cleanup_files_job, due_job
from leadflow.reports.schedules import next_run
from leadflow.worker import outbox
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import _PASSWORD_HASH, Factory, Member
from tests.fixtures.smtp import Inbox, smtp  # noqa: F401
from tests.reports.conftest import Data, at
from tests.reports.test_build import build
from tests.reports.test_export import DETAIL

MONDAY_7_BERLIN = at(2026, 3, 2, 6, 0)  # 07:00 CET
DUE = at(2026, 3, 2, 7, 0)  # 08:00 CET, when the daily 08:00 schedules are first due
BERLIN = "Europe/Berlin"


def _next(frequency: str, time: str, tz: str, after: datetime, **days: int) -> datetime:
    return next_run(
        frequency=frequency,
        time_of_day=time,
        timezone=tz,
        day_of_week=days.get("dow"),
        day_of_month=days.get("dom"),
        after=after,
    )


def test_due_times() -> None:
    # Daily 08:00 in Berlin: today while it is ahead, else tomorrow; exactly at it → next day.
    assert _next("daily", "08:00", "Europe/Berlin", MONDAY_7_BERLIN) == at(2026, 3, 2, 7, 0)
    assert _next("daily", "08:00", "Europe/Berlin", at(2026, 3, 2, 7, 0)) == at(2026, 3, 3, 7, 0)
    # The same wall-clock time after the switch to summer time is an hour earlier in UTC.
    assert _next("daily", "08:00", "Europe/Berlin", at(2026, 3, 29, 0, 0)) == at(2026, 3, 29, 6, 0)
    # 02:30 does not exist on 2026-03-29 in Berlin: it runs at 03:30 CEST (01:30 UTC).
    assert _next("daily", "02:30", "Europe/Berlin", at(2026, 3, 28, 12, 0)) == at(
        2026, 3, 29, 1, 30
    )
    # 02:30 happens twice on 2026-10-25: the first one (CEST, 00:30 UTC) only.
    assert _next("daily", "02:30", "Europe/Berlin", at(2026, 10, 24, 12, 0)) == at(
        2026, 10, 25, 0, 30
    )
    assert _next("daily", "02:30", "Europe/Berlin", at(2026, 10, 25, 0, 30)) == at(
        2026, 10, 26, 1, 30
    )
    # Weekly on Friday (5), New York.
    assert _next("weekly", "17:00", "America/New_York", MONDAY_7_BERLIN, dow=5) == at(
        2026, 3, 6, 22, 0
    )
    # Monthly on the 31st: the month's last day when shorter.
    assert _next("monthly", "06:00", "UTC", at(2026, 2, 1, 0, 0), dom=31) == at(2026, 2, 28, 6, 0)
    assert _next("monthly", "06:00", "UTC", at(2026, 2, 28, 6, 0), dom=31) == at(2026, 3, 31, 6, 0)
    assert _next("monthly", "00:00", "Europe/Berlin", at(2026, 4, 1, 0, 0)) == at(
        2026, 4, 30, 22, 0
    )


async def _schedule(
    client: httpx.AsyncClient, who: Member, report_id: str, status: int = 201, **fields: Any
) -> dict[str, Any]:
    body = {
        "report_id": report_id,
        "frequency": "daily",
        "time": "08:00",
        "recipients": [who.user.email],
        "format": "csv",
        **fields,
    }
    r = await client.post("/api/v1/reports/schedule", headers=who.headers, json=body)
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


async def _frozen_admin(factory: Factory, data: Data) -> Member:
    clock.freeze(MONDAY_7_BERLIN)
    return await factory.relogin(data.admin)


async def _count(session: AsyncSession, model: Any, *conds: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*conds)) or 0)


async def test_schedule_api(client: httpx.AsyncClient, data: Data, factory: Factory) -> None:
    admin = await _frozen_admin(factory, data)
    report = await build(client, admin, DETAIL)
    rid = report["report_id"]
    boss = data.manager.user.email
    created = await _schedule(client, admin, rid, recipients=[admin.user.email, boss.upper()])
    assert created["schedule_id"] == created["id"]
    # The organisation's time zone (Europe/Berlin) when none is given.
    assert created["timezone"] == "Europe/Berlin"
    assert created["next_run"] == "2026-03-02T07:00:00Z"
    assert created["recipients"] == sorted([admin.user.email, boss])
    assert created["status"] == "active" and created["day_of_week"] is None
    weekly = await _schedule(
        client, admin, rid, frequency="weekly", time="09:15", timezone="UTC", day_of_week=3
    )
    assert weekly["next_run"] == "2026-03-04T09:15:00Z" and weekly["day_of_week"] == 3
    listed = (await client.get("/api/v1/reports/scheduled", headers=admin.headers)).json()
    assert [s["id"] for s in listed["items"]] == [weekly["id"], created["id"]]

    sid = created["id"]
    r = await client.patch(
        f"/api/v1/reports/scheduled/{sid}", headers=admin.headers, json={"status": "paused"}
    )
    assert r.status_code == 200 and r.json()["status"] == "paused"
    clock.advance(timedelta(days=2))  # Wednesday 07:00 Berlin
    admin = await factory.relogin(admin)
    r = await client.patch(
        f"/api/v1/reports/scheduled/{sid}", headers=admin.headers, json={"status": "active"}
    )
    # Resumed: the next time from now; the days missed while paused are not made up.
    assert r.json()["status"] == "active" and r.json()["next_run"] == "2026-03-04T07:00:00Z"
    bad = await client.patch(
        f"/api/v1/reports/scheduled/{sid}", headers=admin.headers, json={"status": "done"}
    )
    assert bad.status_code == 422

    for body, code in (
        ({"format": "sheets"}, "integration_required"),
        ({"timezone": "Mars/Olympus"}, "validation_error"),
        ({"time": "24:00"}, "validation_error"),
        ({"recipients": []}, "validation_error"),
        ({"recipients": ["not an address"]}, "validation_error"),
        ({"frequency": "hourly"}, "validation_error"),
    ):
        out = await _schedule(client, admin, rid, status=422, **body)
        assert out["code"] == code, body

    r = await client.delete(f"/api/v1/reports/scheduled/{sid}", headers=admin.headers)
    assert r.status_code == 204
    listed = (await client.get("/api/v1/reports/scheduled", headers=admin.headers)).json()
    assert [s["id"] for s in listed["items"]] == [weekly["id"]]


async def test_other_users_and_orgs_get_404(
    client: httpx.AsyncClient, data: Data, factory: Factory, jobs: JobContext
) -> None:
    admin = await _frozen_admin(factory, data)
    report = await build(client, admin, DETAIL)
    sid = (await _schedule(client, admin, report["report_id"]))["id"]
    clock.advance(timedelta(hours=1))
    assert (await due_job(jobs))["ran"] == 1
    stranger = await factory.member(await factory.org())
    manager = await factory.relogin(data.manager)
    for who in (manager, stranger):
        for method, url, body in (
            ("PATCH", f"/api/v1/reports/scheduled/{sid}", {"status": "paused"}),
            ("DELETE", f"/api/v1/reports/scheduled/{sid}", None),
            ("GET", f"/api/v1/reports/history?report_id={report['report_id']}", None),
            ("GET", f"/api/v1/reports/{report['report_id']}", None),
        ):
            r = await client.request(method, url, headers=who.headers, json=body)
            assert r.status_code == 404, (method, url)
        out = await _schedule(client, who, report["report_id"], status=404)
        assert out["code"] == "not_found"
        for url in ("/api/v1/reports/scheduled", "/api/v1/reports/history"):
            assert (await client.get(url, headers=who.headers)).json()["total"] == 0


async def test_runs_once_per_due_time_and_mails_the_file(
    app: FastAPI,
    client: httpx.AsyncClient,
    data: Data,
    factory: Factory,
    jobs: JobContext,
    session: AsyncSession,
    smtp: tuple[int, Inbox],  # noqa: F811
) -> None:
    port, inbox = smtp
    app.state.settings.smtp_host, app.state.settings.smtp_port = "127.0.0.1", port
    admin = await _frozen_admin(factory, data)
    report = await build(client, admin, {**DETAIL, "name": "Täglich"})
    boss = data.manager.user.email
    created = await _schedule(
        client, admin, report["report_id"], recipients=[admin.user.email, boss]
    )
    sid = created["id"]

    assert await due_job(jobs) == {"ran": 0, "failed": 0, "skipped": 0}  # 07:00, due at 08:00
    clock.advance(timedelta(hours=1))  # exactly the due time
    assert await due_job(jobs) == {"ran": 1, "failed": 0, "skipped": 0}
    assert await due_job(jobs) == {"ran": 0, "failed": 0, "skipped": 0}
    # A second worker that saw the same due time before the first moved the schedule on.
    assert (
        await service.claim_schedule(session, created_id(sid), at(2026, 3, 2, 7), at(2026, 3, 2, 7))
        is None
    )
    assert await _count(session, ReportRun) == 1

    admin = await factory.relogin(admin)
    [run] = (await client.get("/api/v1/reports/history", headers=admin.headers)).json()["items"]
    assert run["trigger"] == "schedule" and run["schedule_id"] == sid
    assert (run["status"], run["row_count"], run["error"]) == ("succeeded", 5, None)
    sched = (await client.get("/api/v1/reports/scheduled", headers=admin.headers)).json()
    assert sched["items"][0]["next_run"] == "2026-03-03T07:00:00Z"
    assert sched["items"][0]["last_run_at"] == "2026-03-02T07:00:00Z"

    assert await outbox.relay(jobs) == 2
    assert inbox.wait_for(2)
    by_to = {m["To"]: m for m in inbox.messages}
    assert set(by_to) == {admin.user.email, boss}
    mail = by_to[boss]
    assert mail["Subject"] == "Bericht: Täglich"
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "ist fertig (5 Zeilen)" in text and "Die Datei ist dieser E-Mail angehängt." in text
    assert run["download_url"].split("/downloads/")[0] + "/downloads/" in text
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_filename() == "t-glich-2026-03-02.csv"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    rows = list(csv.reader(io.StringIO(payload.decode())))
    assert rows[0] == ["Name", "First name", "Last name", "Score", "Source"]
    assert [r[0] for r in rows[1:]] == [
        '\'=HYPERLINK("http://evil.example","x") +1',
        "Anna Alt",
        "Ben Bau",
        "Cara Chen",
        "Dora Dahl",
    ]

    # The next day's due time runs once more.
    clock.advance(timedelta(days=1, seconds=30))
    assert await due_job(jobs) == {"ran": 1, "failed": 0, "skipped": 0}
    assert await _count(session, ReportRun) == 2
    # Paused: not run.
    admin = await factory.relogin(admin)
    await client.patch(
        f"/api/v1/reports/scheduled/{sid}", headers=admin.headers, json={"status": "paused"}
    )
    clock.advance(timedelta(days=1))
    assert await due_job(jobs) == {"ran": 0, "failed": 0, "skipped": 0}


def created_id(sid: str) -> uuid.UUID:
    """A schedule id from the API as a UUID."""
    return uuid.UUID(sid)


async def test_large_files_are_linked_not_attached(
    app: FastAPI,
    client: httpx.AsyncClient,
    data: Data,
    factory: Factory,
    jobs: JobContext,
    session: AsyncSession,
) -> None:
    app.state.settings.report_attachment_max_bytes = 10
    admin = await _frozen_admin(factory, data)
    report = await build(client, admin, DETAIL)
    await _schedule(client, admin, report["report_id"], recipients=[admin.user.email])
    clock.advance(timedelta(hours=1))
    assert (await due_job(jobs))["ran"] == 1
    [row] = list(await session.scalars(select(OutboxMessage)))
    assert "attachments" not in row.payload
    assert "/api/v1/reports/downloads/" in row.payload["text"]
    assert "attached" not in row.payload["text"]


async def test_inactive_owner_fails_the_run_and_pauses(
    client: httpx.AsyncClient,
    data: Data,
    factory: Factory,
    jobs: JobContext,
    session: AsyncSession,
) -> None:
    clock.freeze(MONDAY_7_BERLIN)
    rep = await factory.relogin(data.rep)
    report = await build(client, rep, DETAIL)
    sid = (await _schedule(client, rep, report["report_id"]))["id"]
    user = await session.get(User, rep.user.id)
    assert user is not None
    user.status = "inactive"
    await session.commit()
    clock.advance(timedelta(hours=1))
    assert await due_job(jobs) == {"ran": 0, "failed": 1, "skipped": 0}
    run = await session.scalar(select(ReportRun))
    assert run is not None and run.status == "failed"
    assert run.error is not None and "no longer active" in run.error
    schedule = await session.get(ReportSchedule, created_id(sid), populate_existing=True)
    assert schedule is not None and schedule.status == "paused"
    assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


async def test_a_run_that_fails_is_recorded(
    app: FastAPI,
    client: httpx.AsyncClient,
    data: Data,
    factory: Factory,
    jobs: JobContext,
    session: AsyncSession,
) -> None:
    admin = await _frozen_admin(factory, data)
    report = await build(client, admin, DETAIL)
    await _schedule(client, admin, report["report_id"])
    app.state.settings.report_max_rows = 1
    clock.advance(timedelta(hours=1))
    assert await due_job(jobs) == {"ran": 0, "failed": 1, "skipped": 0}
    admin = await factory.relogin(admin)
    [run] = (await client.get("/api/v1/reports/history", headers=admin.headers)).json()["items"]
    assert run["status"] == "failed" and run["download_url"] is None
    assert run["error"].startswith("The report has 5 rows; at most 1 can be exported")
    # The schedule moved on: the failed due time is not retried.
    assert await due_job(jobs) == {"ran": 0, "failed": 0, "skipped": 0}


async def test_a_run_whose_worker_died_is_run_again_once(
    client: httpx.AsyncClient,
    data: Data,
    factory: Factory,
    jobs: JobContext,
    session: AsyncSession,
) -> None:
    admin = await _frozen_admin(factory, data)
    report = await build(client, admin, DETAIL)
    created = await _schedule(client, admin, report["report_id"], recipients=[admin.user.email])
    sid = created_id(created["id"])
    lease = timedelta(seconds=jobs.settings.report_run_lease_seconds)
    clock.advance(timedelta(hours=1))
    # A worker claims the due time (committed: the schedule moves on) and dies before the
    # run's final write.
    run_id = await service.claim_schedule(session, sid, DUE, DUE)
    await session.commit()
    assert run_id is not None
    zero = {"ran": 0, "failed": 0, "skipped": 0}
    clock.advance(lease)
    assert await due_job(jobs) == zero  # not before the lease has passed
    clock.advance(timedelta(seconds=1))
    assert await due_job(jobs) == {"ran": 1, "failed": 0, "skipped": 0}
    assert await due_job(jobs) == zero
    run = await session.get(ReportRun, run_id, populate_existing=True)
    assert run is not None
    assert (run.status, run.error, run.due_at, run.row_count) == ("succeeded", None, DUE, 5)
    [email] = list(await session.scalars(select(OutboxMessage)))
    assert email.delivery_key.startswith(f"report-run:{run_id}:")
    # The worker that was taken over (it was only slow) may not store or mail the run.
    assert not await repository.hold_run(session, run_id, DUE)
    await session.rollback()

    # The next day's run is taken over and interrupted again: it is not run a third time,
    # the cleanup marks it failed.
    clock.advance(timedelta(days=1))
    nxt = at(2026, 3, 3, 7)
    second = await service.claim_schedule(session, sid, nxt, clock.now())
    await session.commit()
    assert second is not None
    clock.advance(lease + timedelta(seconds=1))
    assert await service.reclaim_run(session, second, clock.now(), lease)
    await session.commit()
    clock.advance(lease + timedelta(seconds=1))
    assert await due_job(jobs) == zero
    assert await cleanup_files_job(jobs) == {"files": 0, "interrupted": 1}
    failed = await session.get(ReportRun, second, populate_existing=True)
    assert failed is not None
    assert (failed.status, failed.error) == ("failed", "Interrupted (the worker stopped)")
    assert await _count(session, OutboxMessage) == 1


async def _committed_schedule(db: Database) -> Report:
    """An organisation, its admin, a report and a schedule due at 08:00 Berlin, committed."""
    async with session_scope(db) as session:
        org = await create_organization(session, name="Two Workers KG")
        role = await org_repo.get_role_by_name(session, org.id, "admin")
        assert role is not None
        admin = User(
            organization_id=org.id,
            email="two-workers@example.com",
            full_name="Admin",
            password_hash=_PASSWORD_HASH,
            role_id=role.id,
            status="active",
        )
        session.add(admin)
        await session.flush()
        report = Report(
            organization_id=org.id,
            owner_id=admin.id,
            name="Shared",
            definition={"fields": ["full_name"]},
        )
        session.add(report)
        await session.flush()
        session.add(
            ReportSchedule(
                organization_id=org.id,
                report_id=report.id,
                owner_id=admin.id,
                frequency="daily",
                time_of_day="08:00",
                timezone="Europe/Berlin",
                recipients=["two-workers@example.com"],
                format="csv",
                status="active",
                next_run=at(2026, 3, 2, 7, 0),
            )
        )
    return report


async def test_two_workers_claiming_run_once(committed_db: Database, tmp_path: Path) -> None:
    settings = Settings(
        env="test",
        database_url=committed_db.url,
        secret_key="two-workers-" + "x" * 40,
        data_dir=tmp_path,
    )
    await _committed_schedule(committed_db)
    clock.freeze(at(2026, 3, 2, 7, 0))
    other = Database(committed_db.url, pool_size=2)
    try:
        workers = [
            JobContext(settings=settings, session_factory=db.sessionmaker)
            for db in (committed_db, other)
        ]
        results = await asyncio.gather(*(due_job(ctx) for ctx in workers))
        assert sorted(r["ran"] for r in results) == [0, 1]
        # Both saw the same due time; the one that claims after the first gets nothing.
        async with session_scope(other) as session:
            [sid] = list(await session.scalars(select(ReportSchedule.id)))
            assert (
                await service.claim_schedule(session, sid, at(2026, 3, 2, 7), at(2026, 3, 2, 7))
                is None
            )
        async with session_scope(committed_db) as session:
            assert await _count(session, ReportRun) == 1
            assert await _count(session, ReportRun, ReportRun.status == "succeeded") == 1
            assert await _count(session, OutboxMessage) == 1
            schedule = await session.scalar(select(ReportSchedule))
            assert schedule is not None
            assert schedule.next_run == datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    finally:
        await other.dispose()


@pytest.mark.parametrize("rounds", [5])
async def test_claims_race(committed_db: Database, rounds: int) -> None:
    """Many claimers of one due time, at once: exactly one run."""
    await _committed_schedule(committed_db)
    async with session_scope(committed_db) as session:
        [sid] = list(await session.scalars(select(ReportSchedule.id)))

    async def claimer() -> bool:
        async with session_scope(committed_db) as session:
            return (
                await service.claim_schedule(session, sid, at(2026, 3, 2, 7), at(2026, 3, 2, 7))
                is not None
            )

    won = await asyncio.gather(*(claimer() for _ in range(rounds)))
    assert sum(won) == 1
    async with session_scope(committed_db) as session:
        assert await _count(session, ReportRun) == 1


async def test_exports_and_schedules_need_leads_export(
    client: httpx.AsyncClient, data: Data, factory: Factory
) -> None:
    # A viewer may read reports but not export leads: no file, no schedule.
    clock.freeze(MONDAY_7_BERLIN)
    viewer = await factory.member(data.org, "viewer")
    report = await build(client, viewer, DETAIL)
    r = await client.post(
        "/api/v1/reports/export",
        headers=viewer.headers,
        json={"report_id": report["report_id"], "format": "csv"},
    )
    assert r.status_code == 403, r.text
    out = await _schedule(client, viewer, report["report_id"], status=403)
    assert out["code"] == "missing_permission"


async def test_recipients_must_be_active_members(
    client: httpx.AsyncClient, data: Data, factory: Factory
) -> None:
    admin = await _frozen_admin(factory, data)
    rid = (await build(client, admin, DETAIL))["report_id"]
    stranger = await factory.member(await factory.org())
    for outside in ("boss@example.com", stranger.user.email):
        out = await _schedule(
            client, admin, rid, status=422, recipients=[admin.user.email, outside]
        )
        assert out["code"] == "recipients_not_members"
        assert out["recipients"] == [outside.lower()]


async def test_recipients_who_left_are_skipped_at_run_time(
    data: Data, factory: Factory, client: httpx.AsyncClient, jobs: JobContext, session: AsyncSession
) -> None:
    admin = await _frozen_admin(factory, data)
    rid = (await build(client, admin, DETAIL))["report_id"]
    manager = data.manager.user
    await _schedule(client, admin, rid, recipients=[admin.user.email, manager.email])
    user = await session.get(User, manager.id)
    assert user is not None
    user.status = "inactive"
    await session.commit()
    clock.advance(timedelta(hours=1))
    assert (await due_job(jobs))["ran"] == 1
    [message] = list(await session.scalars(select(OutboxMessage)))
    assert message.payload["to"] == admin.user.email
    run = await session.scalar(select(ReportRun))
    assert run is not None and run.status == "succeeded"
    assert run.error == (
        f"Not mailed to recipients who are no longer active members: {manager.email}"
    )


async def test_schedules_per_user_are_capped(
    app: FastAPI, client: httpx.AsyncClient, data: Data, factory: Factory
) -> None:
    app.state.settings.report_max_schedules_per_user = 2
    admin = await _frozen_admin(factory, data)
    rid = (await build(client, admin, DETAIL))["report_id"]
    await _schedule(client, admin, rid)
    await _schedule(client, admin, rid)
    out = await _schedule(client, admin, rid, status=409)
    assert out["code"] == "too_many_schedules"


async def test_org_admins_oversee_every_schedule(
    client: httpx.AsyncClient, data: Data, factory: Factory
) -> None:
    clock.freeze(MONDAY_7_BERLIN)
    manager = await factory.relogin(data.manager)
    rid = (await build(client, manager, DETAIL))["report_id"]
    sid = (await _schedule(client, manager, rid))["id"]
    admin = await factory.relogin(data.admin)
    listed = (await client.get("/api/v1/reports/scheduled", headers=admin.headers)).json()
    assert [s["id"] for s in listed["items"]] == [sid]
    r = await client.patch(
        f"/api/v1/reports/scheduled/{sid}", headers=admin.headers, json={"status": "paused"}
    )
    assert r.status_code == 200 and r.json()["status"] == "paused"
    r = await client.delete(f"/api/v1/reports/scheduled/{sid}", headers=admin.headers)
    assert r.status_code == 204
    # Another organisation's admin still sees none of them.
    stranger = await factory.member(await factory.org())
    listed = (await client.get("/api/v1/reports/scheduled", headers=stranger.headers)).json()
    assert listed["total"] == 0
