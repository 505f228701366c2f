"""Fixtures and helpers of the call-request tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.calls.fake_twilio import FakeTwilio

API = "/api/v1/call-requests"
# Berlin wall times, written in UTC (CET = UTC+1 until 29.03.2026, CEST = UTC+2 after).
TUESDAY_10 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # Tue 03.03.2026 10:00 CET, open
_seq = itertools.count(1)

# German mobile numbers; the last digit picks the simulated outcome.
BOOKS = "+49 151 23456780"
NO_ANSWER = "+49 151 23456787"
PROVIDER_FAILS = "+49 151 23456788"
NOT_BOOKED = "+49 151 23456789"
CALLBACK = "+49 30 12345678"


def body(**overrides: Any) -> dict[str, Any]:
    """Seed 001's request body with a fresh request_id."""
    data: dict[str, Any] = {
        "request_id": f"req-{next(_seq)}",
        "user_id": "frontend-user-1",
        "title": "Zahnarzttermin buchen",
        "description": "Ich brauche einen Termin für eine Zahnreinigung",
        "callback_number": CALLBACK,
        "number_to_call": BOOKS,
        "preferred_time": "nächste Woche, Montag 10-12 Uhr",
        "user_profile": {"username": "Max Mustermann", "city": "Berlin"},
    }
    data.update(overrides)
    return data


async def submit(
    client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    """POST a call request that must be accepted; its JSON answer."""
    r = await client.post(API, headers=headers, json=body(**overrides))
    assert r.status_code == 202, r.text
    data: dict[str, Any] = r.json()
    return data


async def fetch(client: httpx.AsyncClient, headers: dict[str, str], ident: str) -> dict[str, Any]:
    """GET one call request."""
    r = await client.get(f"{API}/{ident}", headers=headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def event_types(client: httpx.AsyncClient, headers: dict[str, str], ident: str) -> list[str]:
    """The request's event types in order."""
    r = await client.get(f"{API}/{ident}/events", headers=headers)
    assert r.status_code == 200, r.text
    return [e["type"] for e in r.json()["items"]]


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A running stand-in for Twilio's REST API on 127.0.0.1 (stopped after the test)."""
    server = FakeTwilio().start()
    try:
        yield server
    finally:
        server.stop()
