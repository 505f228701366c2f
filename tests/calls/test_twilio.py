"""The Twilio adapter: the REST call as the stand-in server records it, signed status
callbacks, CallStatus mapping, hang-up after cancel, errors."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from leadflow.calls.twilio import compute_signature, valid_signature
from leadflow.kit.clock import clock
from leadflow.worker.jobs import JobContext, RecordingQueue, run_job
from tests.calls.conftest import API, TUESDAY_10, event_types, fetch, submit
from tests.calls.fake_twilio import FakeTwilio
from tests.fixtures.factories import Factory, Member

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token"
PUBLIC = "https://crm.example.com"

# Twilio's documented example (auth token 12345), in both spellings found in its docs.
_DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


def _doc_params(caller: str) -> list[tuple[str, str]]:
    return [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", caller),
        ("Digits", "1234"),
        ("From", caller),
        ("To", "+18005551212"),
    ]


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
    ],
)
def test_signature_matches_twilios_documented_example(caller: str, expected: str) -> None:
    params = _doc_params(caller)
    assert compute_signature("12345", _DOC_URL, params) == expected
    assert valid_signature("12345", _DOC_URL, list(reversed(params)), expected)
    assert not valid_signature("12345", _DOC_URL, [*params[:-1], ("To", "+1")], expected)
    assert not valid_signature("54321", _DOC_URL, params, expected)
    assert not valid_signature("12345", _DOC_URL, params, None)


def test_signature_accepts_the_default_port_spelled_out() -> None:
    url = "https://crm.example.com/cb"
    params = [("CallStatus", "ringing")]
    signed_with_port = compute_signature(TOKEN, "https://crm.example.com:443/cb", params)
    assert valid_signature(TOKEN, url, params, signed_with_port)


@pytest.fixture
def twilio_app(app: FastAPI, fake_twilio: FakeTwilio) -> FakeTwilio:
    """The app configured for Twilio, its REST API served by the stand-in."""
    s = app.state.settings
    s.voice_provider = "twilio"
    s.twilio_account_sid = SID
    s.twilio_auth_token = TOKEN
    s.twilio_from_number = "+493098765432"
    s.twilio_api_base = fake_twilio.base_url
    s.public_url = PUBLIC
    return fake_twilio


async def _callback(
    client: httpx.AsyncClient,
    call_id: str,
    params: dict[str, str],
    *,
    token: str = TOKEN,
    signature: str | None = "sign",
    url: str | None = None,
) -> httpx.Response:
    path = f"{API}/{call_id}/provider-events"
    headers = {}
    if signature == "sign":
        signature = compute_signature(token, url or f"{PUBLIC}{path}", list(params.items()))
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return await client.post(path, data=params, headers=headers)


async def _placed_call(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, **fields: Any
) -> tuple[Member, str, str]:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers, **fields))["id"]
    assert await run_job(jobs, "calls.process", call_id) == "calling"
    row = await fetch(client, admin.headers, call_id)
    assert row["provider"] == "twilio" and row["provider_call_id"]
    return admin, call_id, row["provider_call_id"]


async def test_call_is_created_over_twilios_rest_api(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, twilio_app: FakeTwilio
) -> None:
    admin, call_id, call_sid = await _placed_call(
        client, factory, jobs, title="Termin <Dr. Müller> & Co"
    )
    assert len(twilio_app.requests) == 1
    sent = twilio_app.requests[0]
    assert sent.method == "POST"
    assert sent.path == f"/2010-04-01/Accounts/{SID}/Calls.json"
    expected_auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {expected_auth}"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.field("To") == "+4915123456780"
    assert sent.field("From") == "+493098765432"
    assert (
        sent.field("StatusCallback") == f"{PUBLIC}/api/v1/call-requests/{call_id}/provider-events"
    )
    assert sent.field("StatusCallbackMethod") == "POST"
    assert sent.fields("StatusCallbackEvent") == ["initiated", "ringing", "answered", "completed"]
    twiml = sent.field("Twiml") or ""
    assert twiml.startswith('<Response><Say language="de-DE">')
    assert "Termin &lt;Dr. Müller&gt; &amp; Co" in twiml  # user input stays text
    assert "4 9 3 0 1 2 3 4 5 6 7 8" in twiml  # the callback number, digit by digit
    assert call_sid.startswith("CA")
    row = await fetch(client, admin.headers, call_id)
    assert row["status"] == "calling"


async def test_signed_callbacks_drive_the_status_to_booked(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, twilio_app: FakeTwilio
) -> None:
    admin, call_id, call_sid = await _placed_call(client, factory, jobs)
    ringing = await _callback(client, call_id, {"CallSid": call_sid, "CallStatus": "ringing"})
    assert ringing.status_code == 200
    assert ringing.json() == {"applied": [], "status": "calling"}
    answered = await _callback(client, call_id, {"CallSid": call_sid, "CallStatus": "in-progress"})
    assert answered.json() == {"applied": ["connected"], "status": "in_progress"}
    done = await _callback(
        client,
        call_id,
        {
            "CallSid": call_sid,
            "CallStatus": "completed",
            "CallDuration": "95",
            "BookingStatus": "confirmed",
            "BookingSummary": "Termin gebucht für Montag, 10:00 Uhr bei Dr. Müller",
        },
    )
    assert done.status_code == 200 and done.json()["status"] == "booked"
    row = await fetch(client, admin.headers, call_id)
    assert row["summary"] == "Termin gebucht für Montag, 10:00 Uhr bei Dr. Müller"
    assert await event_types(client, admin.headers, call_id) == [
        "request_received",
        "call_started",
        "call_connected",
        "booking_confirmed",
        "call_completed",
    ]
    late = await _callback(client, call_id, {"CallSid": call_sid, "CallStatus": "failed"})
    assert late.json() == {"applied": [], "status": "booked"}


async def test_completed_without_booking_waits_for_callback(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, twilio_app: FakeTwilio
) -> None:
    admin, call_id, call_sid = await _placed_call(client, factory, jobs)
    r = await _callback(
        client, call_id, {"CallSid": call_sid, "CallStatus": "completed", "CallDuration": "42"}
    )
    assert r.json() == {"applied": ["connected", "not_booked"], "status": "waiting_for_callback"}
    events = (await client.get(f"{API}/{call_id}/events", headers=admin.headers)).json()["items"]
    assert events[-1]["type"] == "call_completed"
    assert (
        events[-1]["message"] == "Call ended after 42 s: no booking was confirmed during the call"
    )


@pytest.mark.parametrize(
    ("params", "token", "url"),
    [
        pytest.param(None, TOKEN, None, id="missing"),
        pytest.param("garbage", TOKEN, None, id="garbage"),
        pytest.param("sign", "another-token", None, id="wrong-token"),
        pytest.param("sign", TOKEN, "https://evil.example.com/x", id="other-url"),
    ],
)
async def test_callbacks_without_a_valid_signature_are_403(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    twilio_app: FakeTwilio,
    params: str | None,
    token: str,
    url: str | None,
) -> None:
    admin, call_id, call_sid = await _placed_call(client, factory, jobs)
    r = await _callback(
        client,
        call_id,
        {"CallSid": call_sid, "CallStatus": "in-progress"},
        token=token,
        signature=params,
        url=url,
    )
    assert r.status_code == 403
    assert r.json()["code"] == "invalid_signature"
    assert (await fetch(client, admin.headers, call_id))["status"] == "calling"


async def test_tampered_parameters_are_403(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, twilio_app: FakeTwilio
) -> None:
    admin, call_id, call_sid = await _placed_call(client, factory, jobs)
    path = f"{API}/{call_id}/provider-events"
    signed_for = {"CallSid": call_sid, "CallStatus": "ringing"}
    signature = compute_signature(TOKEN, f"{PUBLIC}{path}", list(signed_for.items()))
    r = await client.post(
        path,
        data={"CallSid": call_sid, "CallStatus": "completed", "BookingStatus": "confirmed"},
        headers={"X-Twilio-Signature": signature},
    )
    assert r.status_code == 403
    assert (await fetch(client, admin.headers, call_id))["status"] == "calling"


async def test_busy_is_retried_and_old_call_callbacks_are_ignored(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    twilio_app: FakeTwilio,
    queue: RecordingQueue,
) -> None:
    admin, call_id, first_sid = await _placed_call(client, factory, jobs)
    queue.items.clear()
    r = await _callback(client, call_id, {"CallSid": first_sid, "CallStatus": "busy"})
    assert r.json() == {"applied": ["no_answer"], "status": "waiting_for_callback"}
    assert [a for n, a, _ in queue.items if n == "calls.process"] == [(call_id,)]
    clock.advance(timedelta(minutes=30))
    assert await run_job(jobs, "calls.process", call_id) == "calling"
    assert len(twilio_app.requests) == 2
    admin = await factory.relogin(admin)
    second_sid = (await fetch(client, admin.headers, call_id))["provider_call_id"]
    assert second_sid != first_sid
    stale = await _callback(client, call_id, {"CallSid": first_sid, "CallStatus": "completed"})
    assert stale.json() == {"applied": [], "status": "calling"}
    failed = await _callback(client, call_id, {"CallSid": second_sid, "CallStatus": "failed"})
    assert failed.json() == {"applied": ["failed"], "status": "waiting_for_callback"}
    row = await fetch(client, admin.headers, call_id)
    assert row["attempts"] == 2 and "Twilio could not connect" in row["last_error"]


async def test_cancel_during_a_twilio_call_hangs_up(
    client: httpx.AsyncClient,
    factory: Factory,
    jobs: JobContext,
    twilio_app: FakeTwilio,
    queue: RecordingQueue,
) -> None:
    admin, call_id, call_sid = await _placed_call(client, factory, jobs)
    await _callback(client, call_id, {"CallSid": call_sid, "CallStatus": "in-progress"})
    r = await client.post(f"{API}/{call_id}/cancel", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    assert ("calls.hangup", ("twilio", call_sid, call_id), None) in queue.items
    assert await run_job(jobs, "calls.hangup", "twilio", call_sid, call_id) == "done"
    hangup = twilio_app.requests[-1]
    assert hangup.path == f"/2010-04-01/Accounts/{SID}/Calls/{call_sid}.json"
    assert hangup.form == [("Status", "completed")]
    late = await _callback(
        client, call_id, {"CallSid": call_sid, "CallStatus": "completed", "BookingStatus": "x"}
    )
    assert late.json() == {"applied": [], "status": "canceled"}


async def test_twilio_refusing_the_call_is_a_failed_attempt(
    client: httpx.AsyncClient, factory: Factory, jobs: JobContext, twilio_app: FakeTwilio
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    twilio_app.fail_next(400)
    assert await run_job(jobs, "calls.process", call_id) == "failed"
    row = await fetch(client, admin.headers, call_id)
    assert row["status"] == "waiting_for_callback"
    assert row["last_error"] == "Twilio refused the call (400): Simulated Twilio error"


async def test_unconfigured_twilio_is_a_failed_attempt(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, jobs: JobContext
) -> None:
    app.state.settings.voice_provider = "twilio"
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    call_id = (await submit(client, admin.headers))["id"]
    assert await run_job(jobs, "calls.process", call_id) == "failed"
    row = await fetch(client, admin.headers, call_id)
    assert row["last_error"].startswith("Twilio is not configured: set TWILIO_ACCOUNT_SID")
