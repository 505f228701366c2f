"""GET /api/v1/admin/health and /api/v1/admin/health/metrics: who may read them, bad input,
and exact figures from a controlled installation (outbox rows, heartbeats, request samples,
minute samples taken with a frozen clock)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import leadflow.wiring  # noqa: F401  (registers the sampler job)
from leadflow.health.requests import flush
from leadflow.kit.clock import clock
from leadflow.kit.requeststats import RequestStats
from leadflow.models.health import HealthSample
from leadflow.models.organization import Organization
from leadflow.models.outbox import OutboxMessage
from leadflow.worker.heartbeat import beat
from leadflow.worker.jobs import JobContext, RecordingQueue, run_job
from tests.fixtures.factories import Factory, Member

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HEALTH = "/api/v1/admin/health"
METRICS = "/api/v1/admin/health/metrics"


def outbox_row(
    session: AsyncSession,
    kind: str,
    status: str,
    *,
    due: datetime = NOW,
    org: Organization | None = None,
) -> OutboxMessage:
    """An outbox row as the worker would leave it."""
    row = OutboxMessage(
        organization_id=org.id if org else None,
        kind=kind,
        delivery_key=f"health-test:{uuid.uuid4()}",
        payload={},
        status=status,
        next_attempt_at=due,
        created_at=due,
        sent_at=due if status in ("sent", "logged") else None,
    )
    session.add(row)
    return row


async def operator_admin(app: FastAPI, factory: Factory) -> tuple[Organization, Member]:
    """An organisation configured as the operator's, and an admin of it."""
    org = await factory.org()
    app.state.settings.operator_organization_id = org.id
    return org, await factory.member(org)


def record(
    stats: RequestStats, group: str, at: datetime, ms: float, n: int, status: int = 200
) -> None:
    for _ in range(n):
        stats.record(group, status, ms / 1000, at)


# ---- who may read -----------------------------------------------------------------------


async def test_only_the_operators_admins_read_system_health(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org, admin = await operator_admin(app, factory)
    counselor = await factory.member(org, "counselor")
    manager = await factory.member(org, "manager")
    other = await factory.org()
    other_admin = await factory.member(other)
    urls = (HEALTH, f"{METRICS}?metric_type=queue_depth&time_range=1h")
    for url in urls:
        assert (await client.get(url)).status_code == 401
        for member in (counselor, manager):
            r = await client.get(url, headers=member.headers)
            assert r.status_code == 403, url
            assert r.json()["code"] == "missing_permission"
            assert r.json()["permission"] == "admin:settings"
        # An admin of another organisation holds admin:settings, but the figures describe
        # every organisation's deliveries and the whole installation.
        r = await client.get(url, headers=other_admin.headers)
        assert r.status_code == 403, url
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "operator_only"
        assert (await client.get(url, headers=admin.headers)).status_code == 200, url


async def test_without_configuration_the_oldest_organisation_is_the_operator(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    assert app.state.settings.operator_organization_id is None
    with clock.frozen(datetime(1990, 1, 1, tzinfo=UTC)):
        first = await factory.org("Installed first")
    later = await factory.org("Signed up later")
    first_admin, later_admin = await factory.member(first), await factory.member(later)
    assert (await client.get(HEALTH, headers=first_admin.headers)).status_code == 200
    r = await client.get(HEALTH, headers=later_admin.headers)
    assert r.status_code == 403 and r.json()["code"] == "operator_only"
    # Configured, the setting wins over age.
    app.state.settings.operator_organization_id = later.id
    assert (await client.get(HEALTH, headers=later_admin.headers)).status_code == 200
    r = await client.get(HEALTH, headers=first_admin.headers)
    assert r.status_code == 403 and r.json()["code"] == "operator_only"


# ---- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("metric_type=cpu&time_range=1h", "validation_error"),
        ("metric_type=&time_range=1h", "validation_error"),
        ("time_range=1h", "validation_error"),  # metric_type is required
        ("metric_type=queue_depth&time_range=abc", "invalid_time_range"),
        ("metric_type=queue_depth&time_range=0h", "invalid_time_range"),
        ("metric_type=queue_depth&time_range=4m", "invalid_time_range"),
        ("metric_type=queue_depth&time_range=31d", "invalid_time_range"),
        ("metric_type=queue_depth&time_range=999999d", "invalid_time_range"),
        ("metric_type=queue_depth&time_range=1y", "invalid_time_range"),
        ("metric_type=queue_depth&time_range=-1h", "invalid_time_range"),
        ("metric_type=queue_depth&time_range=1.5h", "invalid_time_range"),
        ("metric_type=queue_depth&time_range=", "invalid_time_range"),
        ("metric_type=queue_depth&time_range=" + "9" * 30 + "d", "validation_error"),
    ],
)
async def test_bad_metric_queries_are_422(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, query: str, code: str
) -> None:
    _, admin = await operator_admin(app, factory)
    r = await client.get(f"{METRICS}?{query}", headers=admin.headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == code
    assert body["errors"][0]["loc"][0] == "query"


# ---- the overview -----------------------------------------------------------------------


async def test_overview_reports_exact_figures(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    queue: RecordingQueue,
    dialect: str,
) -> None:
    clock.freeze(NOW)
    org, admin = await operator_admin(app, factory)
    other = await factory.org()
    # Outbox: 5 emails not yet delivered (one due for 700 s, one waiting for a retry in the
    # future), 2 failed; 3 webhook deliveries pending and 1 failed; 1 failed notification;
    # delivered rows count nowhere.
    outbox_row(session, "email", "pending", due=NOW - timedelta(seconds=700), org=org)
    outbox_row(session, "email", "pending", org=other)
    outbox_row(session, "email", "pending")
    outbox_row(session, "email", "retry", due=NOW - timedelta(seconds=30), org=org)
    outbox_row(session, "email", "retry", due=NOW + timedelta(minutes=5), org=org)
    outbox_row(session, "email", "failed", org=org)
    outbox_row(session, "email", "failed", org=other)
    for _ in range(3):
        outbox_row(session, "webhook.deliver", "pending", org=other)
    outbox_row(session, "webhook", "failed", org=org)
    outbox_row(session, "notification", "failed", org=org)
    outbox_row(session, "email", "sent", due=NOW - timedelta(hours=1), org=org)
    outbox_row(session, "email", "logged", due=NOW - timedelta(hours=1), org=org)
    # Heartbeats: one alive, one missed three beats (45 s), one gone for two days.
    await beat(
        session,
        name="host-a:11",
        started_at=NOW - timedelta(hours=1),
        now=NOW - timedelta(seconds=10),
    )
    await beat(
        session,
        name="host-b:22",
        started_at=NOW - timedelta(hours=2),
        now=NOW - timedelta(seconds=46),
    )
    await beat(
        session, name="host-c:33", started_at=NOW - timedelta(days=3), now=NOW - timedelta(days=2)
    )
    await session.commit()
    # The queue: three jobs to run now, one scheduled.
    for name in ("a", "b", "c"):
        queue.enqueue(name, (), None)
    queue.enqueue("d", (), NOW + timedelta(minutes=1))

    # Two API processes served the `leads` group two minutes ago: 90 requests within 25-50 ms
    # (two of them answered 500) and 10 within 250-400 ms between them.
    two_ago = NOW - timedelta(minutes=2)
    one, two = RequestStats(), RequestStats()
    record(one, "leads", two_ago, 30, 50)
    record(one, "leads", two_ago, 300, 5)
    record(two, "leads", two_ago, 30, 38)
    record(two, "leads", two_ago, 30, 2, status=500)
    record(two, "leads", two_ago, 300, 5)
    record(two, "auth", NOW - timedelta(minutes=6), 20, 7)  # outside the 5-minute window
    record(two, "auth", NOW, 20, 3)  # the current minute: not flushed yet
    assert await flush(one, jobs.session_factory) == 1
    assert await flush(two, jobs.session_factory) == 2
    assert list(two.pending) == [(int(NOW.timestamp() // 60), "auth")]

    r = await client.get(HEALTH, headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["database"]["status"] == "ok"
    assert body["database"]["dialect"] == dialect
    assert body["database"]["latency_ms"] >= 0
    assert body["checked_at"] == "2026-06-01T12:00:00Z"
    assert body["queue"] == {
        "backend": "memory",
        "jobs_waiting": 3,
        "jobs_scheduled": 1,
        "outbox_pending": 8,
        "outbox_oldest_due_seconds": 700.0,
    }
    assert body["jobs"] == {
        "failed": 4,
        "failed_by_kind": {"email": 2, "notification": 1, "webhook": 1},
    }
    assert body["email"] == {"backlog": 5, "failed": 2}
    assert body["webhooks"] == {"backlog": 3, "failed": 1}
    assert body["workers"] == {
        "alive": 1,
        "heartbeat_seconds": 15,
        "items": [
            {
                "name": "host-a:11",
                "started_at": "2026-06-01T11:00:00Z",
                "last_seen_at": "2026-06-01T11:59:50Z",
                "alive": True,
            },
            {
                "name": "host-b:22",
                "started_at": "2026-06-01T10:00:00Z",
                "last_seen_at": "2026-06-01T11:59:14Z",
                "alive": False,
            },
        ],
    }
    assert body["requests"] == {
        "window_minutes": 5,
        "start": "2026-06-01T11:55:00Z",
        "end": "2026-06-01T12:00:00Z",
        "groups": [
            {
                "route_group": "leads",
                "requests": 100,
                "rate_per_second": 0.333,
                "errors": 2,
                "error_rate": 0.02,
                "avg_ms": 57.0,
                # rank 95 of 100: the 5th of the 10 requests in (250, 400] ms
                "p95_ms": 325.0,
            }
        ],
    }
    assert body["sampler"] == {"interval_seconds": 60, "last_sample_at": None}
    assert body["status"] == "degraded"
    assert [w["code"] for w in body["warnings"]] == ["outbox_stalled", "sampler_behind"]

    # Once the sampler ran, only the stalled delivery is left to report.
    await run_job(jobs, "health.sample")
    body = (await client.get(HEALTH, headers=admin.headers)).json()
    assert body["sampler"]["last_sample_at"] == "2026-06-01T12:00:00Z"
    assert [w["code"] for w in body["warnings"]] == ["outbox_stalled"]
    # No worker alive any more: said as such.
    clock.advance(timedelta(seconds=40))
    admin = await factory.relogin(admin)
    body = (await client.get(HEALTH, headers=admin.headers)).json()
    assert body["workers"]["alive"] == 0
    assert [w["code"] for w in body["warnings"]] == ["no_worker_alive", "outbox_stalled"]


async def test_a_healthy_installation_is_ok(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
) -> None:
    clock.freeze(NOW)
    _, admin = await operator_admin(app, factory)
    await beat(session, name="w:1", started_at=NOW - timedelta(minutes=1), now=NOW)
    await session.commit()
    body = (await client.get(HEALTH, headers=admin.headers)).json()
    # A worker that started a minute ago has not owed a sample yet.
    assert body["status"] == "ok" and body["warnings"] == []
    assert body["requests"]["groups"] == []
    assert body["queue"]["outbox_pending"] == 0
    assert body["queue"]["outbox_oldest_due_seconds"] is None
    assert body["webhooks"] == {"backlog": 0, "failed": 0}


async def test_an_unreachable_queue_is_reported_not_raised(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, admin = await operator_admin(app, factory)

    class DeadQueue(RecordingQueue):
        def depth(self) -> tuple[int, int]:
            raise ConnectionError("redis is away")

    monkeypatch.setattr("leadflow.health.endpoints.get_queue", DeadQueue)
    body = (await client.get(HEALTH, headers=admin.headers)).json()
    assert body["queue"]["jobs_waiting"] is None and body["queue"]["jobs_scheduled"] is None
    assert "queue_unreachable" in [w["code"] for w in body["warnings"]]


# ---- time series ------------------------------------------------------------------------


def _values(body: dict[str, Any], group: str | None = None) -> list[float | None]:
    (series,) = [s for s in body["series"] if s["route_group"] == group]
    return [p["value"] for p in series["points"]]


async def test_minute_samples_become_a_time_series(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    queue: RecordingQueue,
) -> None:
    clock.freeze(NOW)
    _, admin = await operator_admin(app, factory)
    await beat(session, name="w:1", started_at=NOW, now=NOW)
    await beat(session, name="w:2", started_at=NOW, now=NOW)
    outbox_row(session, "email", "pending")
    outbox_row(session, "webhook.deliver", "retry")
    await session.commit()

    # 12:00: 1 email, 1 webhook pending, 2 workers alive, an empty queue.
    first = await run_job(jobs, "health.sample")
    assert first == {
        "outbox_pending": 2.0,
        "failed_jobs": 0.0,
        "email_backlog": 1.0,
        "webhook_backlog": 1.0,
        "workers_alive": 2.0,
        "queue_depth": 0.0,
    }
    # 12:01: two more emails, the webhook failed, one worker stopped beating, 4 jobs queued.
    clock.advance(timedelta(minutes=1))
    outbox_row(session, "email", "pending")
    outbox_row(session, "email", "retry")
    webhook = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.kind == "webhook.deliver")
    )
    assert webhook is not None
    webhook.status = "failed"
    await beat(session, name="w:1", started_at=NOW, now=NOW + timedelta(minutes=1))
    await session.commit()
    for _ in range(4):
        queue.enqueue("x", (), None)
    second = await run_job(jobs, "health.sample")
    assert second["email_backlog"] == 3.0 and second["webhook_backlog"] == 0.0
    assert second["outbox_pending"] == 3.0
    assert second["failed_jobs"] == 1.0 and second["workers_alive"] == 1.0
    assert second["queue_depth"] == 4.0
    # A second run in the same minute (a late or repeated claim) stores nothing new.
    outbox_row(session, "email", "pending")
    await session.commit()
    await run_job(jobs, "health.sample")
    stored = await session.scalar(
        select(func.count()).select_from(HealthSample).where(HealthSample.metric == "email_backlog")
    )
    assert stored == 2
    # 12:02: four emails, both workers beat again.
    clock.advance(timedelta(minutes=1))
    for name in ("w:1", "w:2"):
        await beat(session, name=name, started_at=NOW, now=clock.now())
    await session.commit()
    assert (await run_job(jobs, "health.sample"))["workers_alive"] == 2.0

    r = await client.get(
        f"{METRICS}?metric_type=email_backlog&time_range=1h", headers=admin.headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metric_type"] == "email_backlog" and body["unit"] == "count"
    assert body["time_range"] == "1h" and body["step_seconds"] == 60
    # 60 one-minute steps, the last one holding now (12:02).
    assert body["start"] == "2026-06-01T11:03:00Z" and body["end"] == "2026-06-01T12:03:00Z"
    values = _values(body)
    assert len(values) == 60
    assert values[-3:] == [1.0, 3.0, 4.0] and values[:-3] == [None] * 57
    assert body["series"][0]["points"][-1]["at"] == "2026-06-01T12:02:00Z"

    # Over a day the step is 5 minutes: backlogs show the step's highest value, workers the
    # fewest alive (worst case of the step).
    r = await client.get(
        f"{METRICS}?metric_type=email_backlog&time_range=24h", headers=admin.headers
    )
    body = r.json()
    assert body["step_seconds"] == 300 and len(body["series"][0]["points"]) == 288
    assert body["end"] == "2026-06-01T12:05:00Z"
    assert _values(body)[-1] == 4.0
    r = await client.get(
        f"{METRICS}?metric_type=workers_alive&time_range=24h", headers=admin.headers
    )
    assert _values(r.json())[-1] == 1.0
    r = await client.get(f"{METRICS}?metric_type=queue_depth&time_range=24h", headers=admin.headers)
    assert _values(r.json())[-1] == 4.0
    r = await client.get(f"{METRICS}?metric_type=failed_jobs&time_range=30d", headers=admin.headers)
    body = r.json()
    assert body["step_seconds"] == 3 * 3600 and len(body["series"][0]["points"]) == 240
    assert _values(body)[-1] == 1.0


async def test_request_metrics_per_route_group(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, jobs: JobContext
) -> None:
    clock.freeze(NOW + timedelta(minutes=2))
    _, admin = await operator_admin(app, factory)
    stats = RequestStats()
    # 12:00 leads: 19 fast requests and one slow failure; 12:01 leads: 10 at 30 ms;
    # 12:01 tasks: 6 at 7 ms.
    record(stats, "leads", NOW, 30, 19)
    record(stats, "leads", NOW, 3000, 1, status=503)
    record(stats, "leads", NOW + timedelta(minutes=1), 30, 10)
    record(stats, "tasks", NOW + timedelta(minutes=1), 7, 6)
    assert await flush(stats, jobs.session_factory) == 3

    async def get(metric: str, time_range: str) -> dict[str, Any]:
        r = await client.get(
            f"{METRICS}?metric_type={metric}&time_range={time_range}", headers=admin.headers
        )
        assert r.status_code == 200, r.text
        return r.json()

    rate = await get("request_rate", "1h")
    assert rate["unit"] == "requests/s"
    assert [s["route_group"] for s in rate["series"]] == ["leads", "tasks"]
    # Minutes without requests are 0 requests/s; the current minute (12:02) is still empty.
    assert _values(rate, "leads")[-3:] == [0.333, 0.167, 0.0]
    assert _values(rate, "leads")[:-3] == [0.0] * 57
    assert _values(rate, "tasks")[-3:] == [0.0, 0.1, 0.0]
    errors = await get("error_rate", "1h")
    assert errors["unit"] == "ratio"
    assert _values(errors, "leads")[-3:] == [0.05, 0.0, None]
    p95 = await get("latency_p95", "1h")
    assert p95["unit"] == "ms"
    # 12:00: rank 19 of 20 is the 19th of 19 requests in (25, 50] ms → 50.
    # 12:01: rank 9.5 of 10 in (25, 50] → 25 + 25 * 9.5 / 10 = 48.75.
    assert _values(p95, "leads")[-3:] == [50.0, 48.75, None]
    # 12:01 tasks: rank 5.7 of 6 in (5, 10] → 5 + 5 * 5.7 / 6 = 9.75.
    assert _values(p95, "tasks")[-3:] == [None, 9.75, None]
    # Over a day the step is 5 minutes and the step's figures are summed before the
    # percentile is taken: 30 leads requests, rank 28.5 of the 29 in (25, 50] ms.
    day = await get("latency_p95", "24h")
    assert _values(day, "leads")[-1] == 49.569  # 25 + 25 * 28.5 / 29
    day_rate = await get("request_rate", "24h")
    assert _values(day_rate, "leads")[-1] == 0.1  # 30 requests in 300 s
