"""The status machine with the simulated provider: every outcome, business hours, retries,
restart while scheduled, cancel during a call, stale calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.calls import jobs as call_jobs
from leadflow.calls import service
from leadflow.calls.errors import IllegalTransition
from leadflow.calls.providers import (
    CallUpdate,
    OutboundCall,
    SimulatedProvider,
    UpdateKind,
)
from leadflow.calls.schemas import CallStatus
from leadflow.kit.clock import clock
from leadflow.models.audit_log import AuditLog
from leadflow.worker.jobs import JobContext, RecordingQueue, run_job
from tests.calls.conftest import (
    API,
    BOOKS,
    NO_ANSWER,
    NOT_BOOKED,
    PROVIDER_FAILS,
    TUESDAY_10,
    event_types,
    fetch,
    submit,
)
from tests.fixtures.factories import Factory


def _process_jobs(queue: RecordingQueue) -> list[tuple[tuple[object, ...], datetime | None]]:
    return [(args, eta) for name, args, eta in queue.items if name == "calls.process"]


async def _events(
    client: httpx.AsyncClient, headers: dict[str, str], ident: str
) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/{ident}/events", headers=headers)
    assert r.status_code == 200
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_booked_flow_logs_every_step_and_keeps_the_summary(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, queue: RecordingQueue
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    accepted = await submit(client, admin.headers)
    call_id = accepted["id"]
    assert accepted["call_status"] == "queued"
    assert _process_jobs(queue) == [((call_id,), None)]  # started at once, after commit
    assert await run_job(jobs, "calls.process", call_id) == "booked"
    row = await fetch(client, admin.headers, call_id)
    assert row["status"] == "booked" and row["attempts"] == 1 and row["provider"] == "simulated"
    assert "Zahnarzttermin buchen" in row["summary"]
    assert "nächste Woche, Montag 10-12 Uhr" in row["summary"]
    assert row["finished_at"] is not None and row["scheduled_for"] is None
    events = await _events(client, admin.headers, call_id)
    assert [(e["seq"], e["type"], e["status"]) for e in events] == [
        (1, "request_received", "queued"),
        (2, "call_started", "calling"),
        (3, "call_connected", "in_progress"),
        (4, "booking_in_progress", "in_progress"),
        (5, "booking_confirmed", "booked"),
        (6, "call_completed", "booked"),
    ]
    assert all(e["message"] and e["created_at"] for e in events)
    assert events[1]["message"] == "Voice AI started calling +4915123456780 (attempt 1/3)"
    # A second run of the same job (a duplicate delivery) changes nothing.
    assert await run_job(jobs, "calls.process", call_id) == "not_due"
    assert len(await event_types(client, admin.headers, call_id)) == 6


async def test_no_answer_is_retried_then_waits_for_callback(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, queue: RecordingQueue
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers, number_to_call=NO_ANSWER))["id"]
    queue.items.clear()
    assert await run_job(jobs, "calls.process", call_id) == "waiting_for_callback"
    row = await fetch(client, admin.headers, call_id)
    retry_at = TUESDAY_10 + timedelta(minutes=30)
    assert row["scheduled_for"] == retry_at.isoformat().replace("+00:00", "Z")
    assert _process_jobs(queue) == [((call_id,), retry_at)]
    events = await _events(client, admin.headers, call_id)
    assert events[-1]["type"] == "scheduled"
    assert events[-1]["message"] == "Retry 2/3 scheduled for Tue 03.03.2026 10:30 (Europe/Berlin)"
    assert await run_job(jobs, "calls.process", call_id) == "not_due"  # not yet
    clock.advance(timedelta(minutes=30))
    assert await run_job(jobs, "calls.process", call_id) == "waiting_for_callback"
    clock.advance(timedelta(minutes=30))
    queue.items.clear()
    assert await run_job(jobs, "calls.process", call_id) == "waiting_for_callback"
    assert _process_jobs(queue) == []  # no attempts left: nothing more is scheduled
    admin = await factory.relogin(admin)
    row = await fetch(client, admin.headers, call_id)
    assert row["attempts"] == 3 and row["scheduled_for"] is None and row["finished_at"] is None
    types = await event_types(client, admin.headers, call_id)
    assert types == [
        "request_received",
        "call_started",
        "call_failed",
        "scheduled",
        "call_started",
        "call_failed",
        "scheduled",
        "call_started",
        "call_failed",
    ]
    last = (await _events(client, admin.headers, call_id))[-1]
    assert "no attempts left" in last["message"] and "+493012345678" in last["message"]


async def test_retry_outside_business_hours_moves_to_the_next_opening(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, queue: RecordingQueue
) -> None:
    clock.freeze(datetime(2026, 3, 3, 16, 45, tzinfo=UTC))  # Tue 17:45 Berlin
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers, number_to_call=NO_ANSWER))["id"]
    queue.items.clear()
    await run_job(jobs, "calls.process", call_id)
    wednesday_8 = datetime(2026, 3, 4, 7, 0, tzinfo=UTC)
    assert _process_jobs(queue) == [((call_id,), wednesday_8)]
    last = (await _events(client, admin.headers, call_id))[-1]
    assert last["message"] == "Retry 2/3 scheduled for Wed 04.03.2026 08:00 (Europe/Berlin)"


async def test_provider_failure_fails_after_the_last_attempt(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers, number_to_call=PROVIDER_FAILS))["id"]
    statuses = []
    for _ in range(3):
        assert await run_job(jobs, "calls.process", call_id) == "failed"
        admin = await factory.relogin(admin)
        statuses.append((await fetch(client, admin.headers, call_id))["status"])
        clock.advance(timedelta(minutes=30))
    assert statuses == ["waiting_for_callback", "waiting_for_callback", "failed"]
    admin = await factory.relogin(admin)
    row = await fetch(client, admin.headers, call_id)
    assert row["attempts"] == 3 and row["finished_at"] is not None
    assert "Simulated provider failure" in row["last_error"]
    types = await event_types(client, admin.headers, call_id)
    assert types.count("call_failed") == 3 and types[-1] == "call_failed"
    assert await run_job(jobs, "calls.process", call_id) == "not_due"  # final


async def test_connected_but_not_booked_waits_for_callback_without_retry(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, queue: RecordingQueue
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers, number_to_call=NOT_BOOKED))["id"]
    queue.items.clear()
    assert await run_job(jobs, "calls.process", call_id) == "waiting_for_callback"
    assert _process_jobs(queue) == []
    row = await fetch(client, admin.headers, call_id)
    assert row["summary"] is None and row["scheduled_for"] is None and row["attempts"] == 1
    assert await event_types(client, admin.headers, call_id) == [
        "request_received",
        "call_started",
        "call_connected",
        "booking_in_progress",
        "call_completed",
    ]


def _berlin(y: int, mo: int, d: int, h: int, mi: int, offset: int) -> datetime:
    return datetime(y, mo, d, h - offset, mi, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "opens_at", "label"),
    [
        pytest.param(_berlin(2026, 3, 20, 17, 59, 1), None, None, id="friday-17:59-open"),
        pytest.param(
            _berlin(2026, 3, 20, 18, 0, 1),
            _berlin(2026, 3, 23, 8, 0, 1),
            "Mon 23.03.2026 08:00",
            id="friday-18:00-closed",
        ),
        pytest.param(
            _berlin(2026, 3, 21, 12, 0, 1),
            _berlin(2026, 3, 23, 8, 0, 1),
            "Mon 23.03.2026 08:00",
            id="saturday",
        ),
        pytest.param(
            _berlin(2026, 4, 3, 10, 0, 2),  # Good Friday; Easter Monday is a holiday too
            _berlin(2026, 4, 7, 8, 0, 2),
            "Tue 07.04.2026 08:00",
            id="public-holiday",
        ),
        pytest.param(
            _berlin(2026, 3, 28, 10, 0, 1),  # Saturday CET; clocks go forward on Sunday
            _berlin(2026, 3, 30, 8, 0, 2),
            "Mon 30.03.2026 08:00",
            id="dst-weekend",
        ),
    ],
)
async def test_business_hours_decide_between_calling_and_scheduling(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    queue: RecordingQueue,
    now: datetime,
    opens_at: datetime | None,
    label: str | None,
) -> None:
    clock.freeze(now)
    org = await factory.org()
    admin = await factory.member(org)
    accepted = await submit(client, admin.headers)
    call_id = accepted["id"]
    if opens_at is None:
        assert accepted["call_status"] == "queued"
        assert _process_jobs(queue) == [((call_id,), None)]
        assert await run_job(jobs, "calls.process", call_id) == "booked"
        return
    assert accepted["call_status"] == "outside_business_hours"
    assert _process_jobs(queue) == [((call_id,), opens_at)]  # durable eta job
    row = await fetch(client, admin.headers, call_id)
    assert row["scheduled_for"] == opens_at.isoformat().replace("+00:00", "Z")
    events = await _events(client, admin.headers, call_id)
    assert [e["type"] for e in events] == ["request_received", "scheduled"]
    assert events[1]["message"] == f"Scheduled for {label} (Europe/Berlin)"
    assert events[1]["status"] == "outside_business_hours"
    # Run early (a stray delivery): nothing is called.
    assert await run_job(jobs, "calls.process", call_id) == "not_due"
    clock.freeze(opens_at)
    assert await run_job(jobs, "calls.process", call_id) == "booked"


async def test_restart_while_scheduled_is_picked_up_by_the_due_scan(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, queue: RecordingQueue
) -> None:
    saturday = _berlin(2026, 3, 21, 12, 0, 1)
    clock.freeze(saturday)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    assert len(_process_jobs(queue)) == 1
    queue.items.clear()  # the restart lost the queued eta job
    assert await run_job(jobs, "calls.due") == {"queued": 0, "timed_out": 0}
    clock.freeze(_berlin(2026, 3, 23, 8, 2, 1))  # Monday, past scheduled_for (and the grace)
    assert await run_job(jobs, "calls.due") == {"queued": 1, "timed_out": 0}
    assert _process_jobs(queue) == [((call_id,), None)]
    assert await run_job(jobs, "calls.process", call_id) == "booked"
    assert await run_job(jobs, "calls.due") == {"queued": 0, "timed_out": 0}


class _CancelAfterConnect:
    """The simulated provider, except that the user cancels right after the call connects."""

    name = "simulated"

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str], call_id: str) -> None:
        self.client, self.headers, self.call_id = client, headers, call_id
        self.cancel_status: int | None = None

    async def place_call(self, call: OutboundCall) -> AsyncGenerator[CallUpdate, None]:
        async for upd in SimulatedProvider().place_call(call):
            yield upd
            if upd.kind is UpdateKind.CONNECTED:
                r = await self.client.post(f"{API}/{self.call_id}/cancel", headers=self.headers)
                self.cancel_status = r.status_code

    async def hangup(self, provider_call_id: str) -> None:
        return None


async def test_cancel_during_a_call_stops_the_job_without_overwriting(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, session: AsyncSession
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    provider = _CancelAfterConnect(client, admin.headers, call_id)
    outcome = await call_jobs.run_attempt(jobs, uuid.UUID(call_id), provider)
    assert provider.cancel_status == 200
    assert outcome == "stopped"
    row = await fetch(client, admin.headers, call_id)
    assert row["status"] == "canceled" and row["summary"] is None
    assert await event_types(client, admin.headers, call_id) == [
        "request_received",
        "call_started",
        "call_connected",
        "canceled",
    ]
    audits = await session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "call_request.cancel")
    )
    assert audits == 1


async def test_cancel_while_scheduled_and_illegal_cancels(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, queue: RecordingQueue
) -> None:
    clock.freeze(_berlin(2026, 3, 21, 12, 0, 1))  # Saturday
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    r = await client.post(f"{API}/{call_id}/cancel", headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "canceled" and r.json()["scheduled_for"] is None
    again = await client.post(f"{API}/{call_id}/cancel", headers=admin.headers)
    assert again.status_code == 200 and again.json()["status"] == "canceled"  # idempotent
    clock.freeze(_berlin(2026, 3, 23, 8, 0, 1))
    assert await run_job(jobs, "calls.process", call_id) == "not_due"  # the eta job fires
    admin = await factory.relogin(admin)
    assert (await fetch(client, admin.headers, call_id))["status"] == "canceled"
    booked = (await submit(client, admin.headers))["id"]
    assert await run_job(jobs, "calls.process", booked) == "booked"
    r = await client.post(f"{API}/{booked}/cancel", headers=admin.headers)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "illegal_transition"
    assert r.json()["current"] == "booked"
    assert (await fetch(client, admin.headers, booked))["status"] == "booked"


# The documented status machine, written out independently of the service's table.
_ALLOWED = {
    ("queued", "outside_business_hours"),
    ("queued", "calling"),
    ("queued", "canceled"),
    ("outside_business_hours", "calling"),
    ("outside_business_hours", "canceled"),
    ("calling", "in_progress"),
    ("calling", "waiting_for_callback"),
    ("calling", "failed"),
    ("calling", "canceled"),
    ("in_progress", "booked"),
    ("in_progress", "waiting_for_callback"),
    ("in_progress", "failed"),
    ("in_progress", "canceled"),
    ("waiting_for_callback", "calling"),
    ("waiting_for_callback", "canceled"),
}


@pytest.mark.parametrize("current", list(CallStatus))
@pytest.mark.parametrize("target", list(CallStatus))
def test_only_documented_transitions_are_allowed(current: CallStatus, target: CallStatus) -> None:
    if (current.value, target.value) in _ALLOWED:
        service.check_transition(current, target)
        return
    with pytest.raises(IllegalTransition) as info:
        service.check_transition(current, target)
    assert info.value.status == 409 and info.value.code == "illegal_transition"


async def test_a_call_that_never_reports_back_times_out(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    session: AsyncSession,
    queue: RecordingQueue,
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    # The worker dies right after starting the call: the request stays `calling`.
    outcome, _ = await service.start_attempt(
        session, jobs.settings, uuid.UUID(call_id), "simulated"
    )
    await session.commit()
    assert outcome == "started"
    clock.advance(timedelta(minutes=29))
    assert await run_job(jobs, "calls.due") == {"queued": 0, "timed_out": 0}
    clock.advance(timedelta(minutes=2))
    queue.items.clear()
    assert await run_job(jobs, "calls.due") == {"queued": 0, "timed_out": 1}
    admin = await factory.relogin(admin)
    row = await fetch(client, admin.headers, call_id)
    assert row["status"] == "waiting_for_callback" and row["scheduled_for"] is not None
    assert "No final status from the provider" in row["last_error"]
    assert len(_process_jobs(queue)) == 1  # the retry


class _Crashing:
    name = "simulated"

    async def place_call(self, call: OutboundCall) -> AsyncGenerator[CallUpdate, None]:
        yield CallUpdate(UpdateKind.CONNECTED, "Connected")
        raise RuntimeError("bug in a provider")

    async def hangup(self, provider_call_id: str) -> None:
        return None


async def test_a_crashing_provider_counts_as_a_failed_attempt(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    assert await call_jobs.run_attempt(jobs, uuid.UUID(call_id), _Crashing()) == "failed"
    row = await fetch(client, admin.headers, call_id)
    assert row["status"] == "waiting_for_callback"
    assert row["last_error"] == "Internal error while calling (RuntimeError)"
    assert (await event_types(client, admin.headers, call_id))[-2:] == ["call_failed", "scheduled"]


async def test_booked_number_digits(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext
) -> None:
    """Numbers ending 0-6 book (the documented table)."""
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    for digit in "0123456":
        call_id = (await submit(client, admin.headers, number_to_call=BOOKS[:-1] + digit))["id"]
        assert await run_job(jobs, "calls.process", call_id) == "booked", digit
