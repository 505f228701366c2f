"""Background jobs of call requests: run an attempt, the periodic due-scan, hang up.

`calls.process` runs one attempt in short transactions: start it (commit), then apply each
provider update in its own transaction. No transaction stays open while the provider talks,
and a cancel committed meanwhile makes the next update not apply, which ends the job without
touching the canceled request.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import aclosing
from datetime import timedelta

from sqlalchemy import select

from leadflow.calls import repository, service
from leadflow.calls.integration import provider_for
from leadflow.calls.providers import (
    CallUpdate,
    ProviderError,
    SimulatedProvider,
    UpdateKind,
    VoiceProvider,
)
from leadflow.calls.twilio import TwilioProvider
from leadflow.config import Settings
from leadflow.db.engine import transactions_that
from leadflow.kit.clock import utcnow
from leadflow.models.call_request import CallRequest
from leadflow.worker.jobs import JobContext, enqueue_job, job

log = logging.getLogger("leadflow.calls")

# The eta job (or the immediate one) normally starts a due attempt; the scan leaves it this
# long before stepping in, so the two rarely race (they are safe when they do).
DUE_GRACE = timedelta(seconds=60)
DUE_BATCH = 500


def build_provider(settings: Settings) -> VoiceProvider:
    """The provider chosen by `LEADFLOW_VOICE_PROVIDER`."""
    if settings.voice_provider == "twilio":
        return TwilioProvider.from_settings(settings)
    return SimulatedProvider()


async def run_attempt(ctx: JobContext, call_id: uuid.UUID, provider: VoiceProvider) -> str:
    """Run the request's next attempt with `provider` if one is due; returns what happened.

    `not_due`, `scheduled`, `skipped`, `missing` (nothing called), `stopped` (an update did
    not apply: canceled meanwhile), `failed` (the provider raised), or the request's status
    after the provider's last update (`booked`, `calling` while Twilio runs the call …).
    """
    async with ctx.session_factory() as session:
        outcome, row = await service.start_attempt(session, ctx.settings, call_id, provider.name)
        call = service.outbound_call(ctx.settings, row) if outcome == "started" and row else None
        await session.commit()
    if call is None:
        return outcome
    try:
        async with aclosing(provider.place_call(call)) as updates:
            async for upd in updates:
                async with ctx.session_factory() as session:
                    applied = await service.apply_update(
                        session, ctx.settings, call_id, call.attempt, upd
                    )
                    await session.commit()
                if not applied:
                    log.info(
                        "call update no longer applies; stopping",
                        extra={"call_request_id": str(call_id), "update": upd.kind.value},
                    )
                    return "stopped"
    except Exception as exc:
        if isinstance(exc, ProviderError):
            message = str(exc)
        else:
            log.exception("call attempt crashed", extra={"call_request_id": str(call_id)})
            message = f"Internal error while calling ({type(exc).__name__})"
        async with ctx.session_factory() as session:
            applied = await service.apply_update(
                session, ctx.settings, call_id, call.attempt, CallUpdate(UpdateKind.FAILED, message)
            )
            await session.commit()
        return "failed" if applied else "stopped"
    async with ctx.session_factory() as session:
        current = await session.get(CallRequest, call_id)
        return current.status if current is not None else "missing"


async def provider_of(ctx: JobContext, call_id: uuid.UUID) -> VoiceProvider:
    """The organisation's own Twilio account when it connected one, else the configured
    provider (read in a short transaction: nothing stays open while the provider talks)."""
    with transactions_that(write=False):
        async with ctx.session_factory() as session:
            org_id = await session.scalar(
                select(CallRequest.organization_id).where(CallRequest.id == call_id)
            )
            own = await provider_for(session, ctx.settings, org_id) if org_id else None
    return own or build_provider(ctx.settings)


@job("calls.process")
async def process(ctx: JobContext, call_request_id: str) -> str:
    """Run the due attempt of one call request (queued after commit, or with an eta)."""
    call_id = uuid.UUID(call_request_id)
    return await run_attempt(ctx, call_id, await provider_of(ctx, call_id))


@job("calls.due")
async def due(ctx: JobContext) -> dict[str, int]:
    """Periodic safety net (every LEADFLOW_CALL_DUE_SECONDS): queue attempts whose time has
    passed but whose job never ran (lost queue entry, restart), and time out calls that
    never reported back."""
    now = utcnow()
    async with ctx.session_factory() as session:
        due_ids = await repository.due_ids(session, now - DUE_GRACE, DUE_BATCH)
        for call_id in due_ids:
            enqueue_job(session, "calls.process", str(call_id))
        stale = await repository.stale_calls(session, now, DUE_BATCH)
        await session.commit()
    timed_out = 0
    for call_id, attempt in stale:
        async with ctx.session_factory() as session:
            if await service.time_out(session, ctx.settings, call_id, attempt):
                timed_out += 1
            await session.commit()
    if due_ids or timed_out:
        log.info("call requests due", extra={"queued": len(due_ids), "timed_out": timed_out})
    return {"queued": len(due_ids), "timed_out": timed_out}


@job("calls.hangup")
async def hangup(
    ctx: JobContext, provider: str, provider_call_id: str, call_request_id: str | None = None
) -> str:
    """End a provider call whose request was canceled (on the account that placed it)."""
    if provider != "twilio":
        return "skipped"
    chosen = await provider_of(ctx, uuid.UUID(call_request_id)) if call_request_id else None
    twilio = chosen if isinstance(chosen, TwilioProvider) else None
    await (twilio or TwilioProvider.from_settings(ctx.settings)).hangup(provider_call_id)
    return "done"
