"""Seed 001's own example request is accepted: a callback number that is possible but not
known to be valid is normalised and flagged (answer + event); impossible numbers stay 422."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock
from leadflow.models.call_request import CallRequest
from tests.calls.conftest import API, TUESDAY_10, fetch
from tests.fixtures.factories import Factory

ALIAS = "/api/process-request"

# Verbatim from seeds/001 ("Request Body" of POST /api/process-request).
SEED_EXAMPLE: dict[str, Any] = {
    "request_id": "uuid-string",
    "user_id": "uuid-string",
    "title": "Zahnarzttermin buchen",
    "description": "Ich brauche einen Termin für eine Zahnreinigung",
    "callback_number": "+49 123 456789",
    "number_to_call": "+49 987 654321",
    "preferred_time": "nächste Woche, Montag 10-12 Uhr",
    "user_profile": {
        "username": "Max Mustermann",
        "street": "Musterstraße",
        "house_number": "123",
        "postal_code": "12345",
        "city": "Berlin",
        "country": "Germany",
    },
}


@pytest.mark.parametrize("path", [API, ALIAS], ids=["canonical", "seed-alias"])
async def test_seed_example_is_accepted_normalised_and_flagged(
    client: httpx.AsyncClient, factory: Factory, path: str
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(path, headers=admin.headers, json=SEED_EXAMPLE)
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["status"] == "accepted" and out["request_id"] == "uuid-string"
    assert [(w["field"], w["code"]) for w in out["warnings"]] == [
        ("callback_number", "phone_unverified")
    ]
    assert "+49123456789" in out["warnings"][0]["message"]
    stored = await fetch(client, admin.headers, out["id"])
    assert stored["callback_number"] == "+49123456789"
    assert stored["number_to_call"] == "+49987654321"
    events = (await client.get(f"{API}/{out['id']}/events", headers=admin.headers)).json()
    received = events["items"][0]
    assert received["type"] == "request_received"
    assert received["data"] == {"warnings": out["warnings"]}
    # A replay of the request_id answers with the same warnings.
    again = await client.post(path, headers=admin.headers, json=SEED_EXAMPLE)
    assert again.status_code == 200 and again.json()["warnings"] == out["warnings"]


@pytest.mark.parametrize("path", [API, ALIAS], ids=["canonical", "seed-alias"])
async def test_a_valid_callback_number_has_no_warning(
    client: httpx.AsyncClient, factory: Factory, path: str
) -> None:
    clock.freeze(TUESDAY_10)
    admin = await factory.member(await factory.org())
    sent = {**SEED_EXAMPLE, "callback_number": "+49 30 12345678"}
    r = await client.post(path, headers=admin.headers, json=sent)
    assert r.status_code == 202, r.text
    assert r.json()["warnings"] == []
    events = (await client.get(f"{API}/{r.json()['id']}/events", headers=admin.headers)).json()
    assert events["items"][0]["data"] is None


IMPOSSIBLE = ["+49 12", "+49 1234 5678 9012 3456", "12", "+1 555 1234", "nope"]


@pytest.mark.parametrize("path", [API, ALIAS], ids=["canonical", "seed-alias"])
@pytest.mark.parametrize("number", IMPOSSIBLE)
async def test_impossible_callback_numbers_stay_422(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, path: str, number: str
) -> None:
    clock.freeze(TUESDAY_10)
    admin = await factory.member(await factory.org())
    r = await client.post(
        path, headers=admin.headers, json={**SEED_EXAMPLE, "callback_number": number}
    )
    assert r.status_code == 422, r.text
    assert "callback_number" in r.text
    assert await session.scalar(select(func.count()).select_from(CallRequest)) == 0
