"""Outbound calls cannot be abused: hourly limits per user and per organisation, a daily cap
per organisation (429 with Retry-After), and destinations limited to the organisation's
allowed calling countries (422), on both engines."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.kit.clock import clock
from leadflow.models.call_request import CallRequest
from leadflow.models.organization import Organization
from tests.calls.conftest import API, TUESDAY_10, body, submit
from tests.fixtures.factories import Factory

ALIAS = "/api/process-request"
AUSTRIA = "+43 664 1234567"  # an Austrian mobile number
UK = "+44 20 7946 0958"


async def _count(session: AsyncSession, org: Organization) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(CallRequest)
            .where(CallRequest.organization_id == org.id)
        )
        or 0
    )


def _limits(app: FastAPI, settings: Settings, **values: int) -> None:
    app.state.settings = settings.model_copy(
        update={
            "calls_per_user_per_hour": 0,
            "calls_per_org_per_hour": 0,
            "calls_per_org_per_day": 0,
            **values,
        }
    )


def _assert_limited(r: httpx.Response, limit: str, retry_after: int) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = r.json()
    assert (problem["code"], problem["limit"]) == ("call_limit_exceeded", limit)
    assert r.headers["retry-after"] == str(retry_after)


# --------------------------------------------------------------------------- rate limits


async def test_user_hourly_limit_in_a_moving_hour(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    settings: Settings,
    session: AsyncSession,
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    alice, bob = await factory.member(org, "counselor"), await factory.member(org, "counselor")
    _limits(app, settings, calls_per_user_per_hour=2)

    first = body()
    assert (await client.post(API, headers=alice.headers, json=first)).status_code == 202
    clock.advance(timedelta(minutes=5))
    await submit(client, alice.headers)
    clock.advance(timedelta(minutes=5))
    r = await client.post(API, headers=alice.headers, json=body())
    _assert_limited(r, "user_hour", 50 * 60)  # the first request leaves the hour in 50 min
    assert await _count(session, org) == 2  # nothing written

    # A replay of an accepted request_id starts nothing and is not refused.
    replay = await client.post(API, headers=alice.headers, json=first)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    # The limit is per user.
    await submit(client, bob.headers)

    clock.advance(timedelta(minutes=50))  # the first request is an hour old now
    alice = await factory.relogin(alice)
    await submit(client, alice.headers)
    _assert_limited(await client.post(API, headers=alice.headers, json=body()), "user_hour", 300)


async def test_organisation_hourly_limit_covers_all_its_users_only(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    settings: Settings,
    session: AsyncSession,
) -> None:
    clock.freeze(TUESDAY_10)
    org, other = await factory.org(), await factory.org()
    alice, bob = await factory.member(org, "counselor"), await factory.member(org, "counselor")
    stranger = await factory.member(other)
    _limits(app, settings, calls_per_org_per_hour=3, calls_per_user_per_hour=30)

    await submit(client, alice.headers)
    await submit(client, bob.headers)
    await submit(client, alice.headers)
    r = await client.post(API, headers=bob.headers, json=body())
    _assert_limited(r, "org_hour", 3600)
    assert await _count(session, org) == 3
    await submit(client, stranger.headers)  # another organisation counts on its own

    # The seed's alias answers in its own shape, with the same limit and Retry-After.
    r = await client.post(ALIAS, headers=bob.headers, json=body(request_id="alias-1"))
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "call_limit_exceeded"
    assert r.json()["status"] == "error"
    assert r.headers["retry-after"] == "3600"


async def test_organisation_daily_cap_resets_at_midnight_utc(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    settings: Settings,
    session: AsyncSession,
) -> None:
    # 23:50 UTC (00:50 in Berlin, outside business hours: the calls are scheduled, not placed).
    late = TUESDAY_10.replace(hour=23, minute=50)
    clock.freeze(late)
    org = await factory.org()
    admin = await factory.member(org)
    _limits(app, settings, calls_per_org_per_day=2)

    await submit(client, admin.headers)
    await submit(client, admin.headers)
    _assert_limited(await client.post(API, headers=admin.headers, json=body()), "org_day", 600)
    assert await _count(session, org) == 2

    clock.freeze(late + timedelta(minutes=10))  # midnight UTC: a new day
    await submit(client, admin.headers)


async def test_default_limits_apply(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    assert (
        settings.calls_per_user_per_hour,
        settings.calls_per_org_per_hour,
        settings.calls_per_org_per_day,
    ) == (30, 200, 1000)
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    for _ in range(30):
        await submit(client, admin.headers)
    _assert_limited(await client.post(API, headers=admin.headers, json=body()), "user_hour", 3600)


# --------------------------------------------------------------------------- countries


async def test_destination_must_be_in_an_allowed_country(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)

    # Default: LEADFLOW_DEFAULT_PHONE_REGION (DE); the callback number may be anywhere.
    await submit(client, admin.headers, callback_number=UK)
    r = await client.post(API, headers=admin.headers, json=body(number_to_call=AUSTRIA))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "call_country_not_allowed"
    assert problem["errors"][0]["loc"] == ["body", "number_to_call"]
    assert "AT" in problem["detail"] and "allowed: DE" in problem["detail"]
    assert await _count(session, org) == 1

    # A lead's phone abroad is refused the same way.
    lead = await factory.lead(org, first_name="Lea", last_name="Kramer", phone=UK)
    r = await client.post(
        API, headers=admin.headers, json=body(number_to_call=None, lead_id=str(lead.id))
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "number_to_call"]
    assert "lead's phone" in r.json()["detail"]

    # The organisation allows Austria too.
    r = await client.patch(
        "/api/v1/admin/settings",
        headers=admin.headers,
        json={"allowed_call_countries": ["de", "AT"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["allowed_call_countries"] == ["DE", "AT"]
    await submit(client, admin.headers, number_to_call=AUSTRIA)
    r = await client.post(API, headers=admin.headers, json=body(number_to_call=UK))
    assert r.status_code == 422
    assert await _count(session, org) == 2

    # The seed's alias names the field too.
    r = await client.post(ALIAS, headers=admin.headers, json=body(number_to_call=UK))
    assert r.status_code == 422
    assert r.json()["code"] == "call_country_not_allowed"
    assert "number_to_call" in r.json()["error"]


async def test_without_a_list_the_calendar_country_is_allowed(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(TUESDAY_10)
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.patch(
        "/api/v1/admin/settings",
        headers=admin.headers,
        json={"calendar": {"timezone": "Europe/Vienna", "country": "AT"}},
    )
    assert r.status_code == 200, r.text
    await submit(client, admin.headers, number_to_call=AUSTRIA)
    r = await client.post(API, headers=admin.headers, json=body())  # a German number
    assert r.status_code == 422
    assert "allowed: AT" in r.json()["detail"]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(["XX"], id="unknown-code"),
        pytest.param(["Germany"], id="not-a-code"),
        pytest.param([], id="empty"),
    ],
)
async def test_allowed_countries_must_be_known_codes(
    client: httpx.AsyncClient, factory: Factory, value: list[str]
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.patch(
        "/api/v1/admin/settings", headers=admin.headers, json={"allowed_call_countries": value}
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"][-1] == "allowed_call_countries"
    current = (await client.get("/api/v1/admin/settings", headers=admin.headers)).json()
    assert current["allowed_call_countries"] is None
