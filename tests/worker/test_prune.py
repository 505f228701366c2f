"""The daily pruning job: rows past retention go in batches; recent, undelivered and audit rows
stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import leadflow.wiring  # noqa: F401  (registers every job)
from leadflow.audit.service import record
from leadflow.kit.clock import clock
from leadflow.models.audit_log import AuditLog
from leadflow.models.auth_session import AuthSession, RefreshToken
from leadflow.models.call_request import CallRequest, CallRequestEvent
from leadflow.models.outbox import OutboxMessage, PeriodicRun
from leadflow.worker.jobs import JOBS, JobContext, run_job
from tests.fixtures.factories import Factory

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def _ids(session: AsyncSession, model: type) -> set[uuid.UUID]:
    return set(await session.scalars(select(model.id)))  # type: ignore[attr-defined]


async def test_prune_drops_old_rows_in_batches_and_keeps_the_rest(
    session: AsyncSession, factory: Factory, jobs: JobContext
) -> None:
    clock.freeze(NOW)
    org = await factory.org()
    user = await factory.user(org)

    def login(*, created: float, expires: float, revoked: float | None = None) -> AuthSession:
        row = AuthSession(
            user_id=user.id,
            organization_id=org.id,
            created_at=_ago(created),
            expires_at=_ago(expires),
            revoked_at=_ago(revoked) if revoked is not None else None,
        )
        session.add(row)
        return row

    revoked_long_ago = login(created=90, expires=-10, revoked=40)
    expired_long_ago = login(created=90, expires=31)
    revoked_recently = login(created=90, expires=-10, revoked=5)
    expired_recently = login(created=60, expires=29)
    active_old = login(created=400, expires=-1)
    await session.flush()
    session.add(RefreshToken(session_id=revoked_long_ago.id, token_hash="a" * 64))

    def message(status: str, *, created: float, sent: float | None = None) -> OutboxMessage:
        row = OutboxMessage(
            kind="email",
            delivery_key=f"prune-test:{uuid.uuid4()}",
            payload={},
            status=status,
            created_at=_ago(created),
            next_attempt_at=_ago(created),
            sent_at=_ago(sent) if sent is not None else None,
        )
        session.add(row)
        return row

    sent_old = message("sent", created=41, sent=40)
    logged_old = message("logged", created=41, sent=40)
    sent_recent = message("sent", created=41, sent=5)
    pending_old = message("pending", created=400)
    retry_old = message("retry", created=400)
    failed_old = message("failed", created=400)

    call = CallRequest(
        organization_id=org.id,
        request_id="prune-1",
        external_user_id="u1",
        title="Call",
        callback_number="+4930123456",
        number_to_call="+4930654321",
    )
    session.add(call)
    await session.flush()
    events = [
        CallRequestEvent(
            organization_id=org.id,
            call_request_id=call.id,
            seq=seq,
            type="status",
            status="queued",
            message="m",
            created_at=_ago(days),
        )
        for seq, days in enumerate([400, 390, 380, 370, 366, 364, 10], start=1)
    ]
    session.add_all(events)
    # Claims of periodic runs: three old intervals of the relay (two batches), one of the
    # SLA check; the recent ones stay, and so does a job's newest claim however old (its
    # interval may be longer than the retention and still running).
    for name, days in [
        ("outbox.relay", 40),
        ("outbox.relay", 35),
        ("outbox.relay", 31),
        ("outbox.relay", 29),
        ("sla.check", 31),
        ("sla.check", 0),
        ("reports.cleanup_files", 45),
        ("reports.cleanup_files", 40),
    ]:
        session.add(PeriodicRun(name=name, slot=_ago(days), worker="w:1", started_at=_ago(days)))
    clock.freeze(_ago(4000))
    await record(
        session,
        actor=None,
        organization_id=org.id,
        action="old.thing",
        resource_type="organization",
        resource_id=org.id,
    )
    clock.freeze(NOW)
    await session.commit()
    audit_rows = await session.scalar(select(func.count()).select_from(AuditLog))

    jobs.settings.prune_batch_size = 2  # several batches per table
    result = await run_job(jobs, "maintenance.prune")
    assert result == {
        "sessions": 2,
        "outbox": 2,
        "call_events": 5,
        "request_samples": 0,
        "health_samples": 0,
        "worker_heartbeats": 0,
        "webhook_attempts": 0,  # tests/webhooks/test_prune.py
        "webhook_deliveries": 0,
        "periodic_runs": 5,
    }
    session.expunge_all()
    kept = set(await session.execute(select(PeriodicRun.name, PeriodicRun.slot)))
    assert kept == {
        ("outbox.relay", _ago(29)),
        ("sla.check", NOW),
        ("reports.cleanup_files", _ago(40)),
    }

    assert await _ids(session, AuthSession) == {
        revoked_recently.id,
        expired_recently.id,
        active_old.id,
    }
    assert (
        await session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.session_id == revoked_long_ago.id)
        )
        == 0
    )
    assert expired_long_ago.id not in await _ids(session, AuthSession)
    assert {sent_recent.id, pending_old.id, retry_old.id, failed_old.id} <= await _ids(
        session, OutboxMessage
    )
    assert not {sent_old.id, logged_old.id} & await _ids(session, OutboxMessage)
    assert await _ids(session, CallRequestEvent) == {events[5].id, events[6].id}
    assert await session.scalar(select(func.count()).select_from(AuditLog)) == audit_rows
    # A second run finds nothing left to do.
    again = await run_job(jobs, "maintenance.prune")
    assert set(again.values()) == {0}


async def test_retention_follows_the_settings(
    session: AsyncSession, factory: Factory, jobs: JobContext
) -> None:
    clock.freeze(NOW)
    org = await factory.org()
    call = CallRequest(
        organization_id=org.id,
        request_id="prune-2",
        external_user_id="u1",
        title="Call",
        callback_number="+4930123456",
        number_to_call="+4930654321",
    )
    session.add(call)
    await session.flush()
    event = CallRequestEvent(
        organization_id=org.id,
        call_request_id=call.id,
        seq=1,
        type="status",
        status="queued",
        message="m",
        created_at=_ago(100),
    )
    session.add(event)
    await session.commit()
    assert (await run_job(jobs, "maintenance.prune"))["call_events"] == 0
    jobs.settings.retention_call_events_days = 90
    assert (await run_job(jobs, "maintenance.prune"))["call_events"] == 1
    assert "maintenance.prune" in JOBS
