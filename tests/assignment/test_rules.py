"""Assignment rules: conditions, strategies, history, CRUD and permissions."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock
from leadflow.models.lead_history import LeadAssignment
from leadflow.models.user import User
from tests.conftest import new_uuid
from tests.fixtures.factories import Factory


async def _rule(client: httpx.AsyncClient, h: dict[str, str], **body: object) -> dict[str, Any]:
    r = await client.post("/api/v1/assignment/rules", headers=h, json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def _create(client: httpx.AsyncClient, h: dict[str, str], **body: object) -> dict[str, Any]:
    body.setdefault("first_name", "Auto")
    body.setdefault("email", f"{new_uuid()}@example.com")
    r = await client.post("/api/v1/leads", headers=h, json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_round_robin_spreads_evenly_and_records_rule(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    reps = [await factory.user(org, "counselor") for _ in range(3)]
    rule = await _rule(
        client,
        admin.headers,
        name="Web leads",
        strategy="round_robin",
        conditions={"source": ["website"]},
        user_ids=[str(u.id) for u in reps],
    )
    created = [await _create(client, admin.headers, source="website") for _ in range(9)]
    spread = Counter(c["assignee_id"] for c in created)
    assert sorted(spread.values()) == [3, 3, 3]
    assert set(spread) == {str(u.id) for u in reps}
    other = await _create(client, admin.headers, source="messe")
    assert other["assignee_id"] is None
    row = await session.scalar(
        select(LeadAssignment).where(LeadAssignment.lead_id == uuid.UUID(created[0]["id"]))
    )
    assert row is not None and str(row.rule_id) == rule["id"]
    assert row.reason is not None and "Web leads" in row.reason


async def test_least_loaded_respects_capacity_and_out_of_office(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    clock.freeze(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    org = await factory.org()
    admin = await factory.member(org)
    busy, free, away = [await factory.user(org, "counselor") for _ in range(3)]
    for _ in range(2):
        await factory.lead(org, assignee_id=busy.id)
    await factory.lead(org, assignee_id=free.id, status="won")  # closed leads do not count
    u_free = await session.get(User, free.id)
    u_away = await session.get(User, away.id)
    assert u_free is not None and u_away is not None
    u_free.capacity = 2
    u_away.out_of_office_until = datetime(2026, 5, 10, tzinfo=UTC)
    await session.commit()
    await _rule(
        client,
        admin.headers,
        name="Least",
        strategy="least_loaded",
        user_ids=[str(busy.id), str(free.id), str(away.id)],
    )
    first = await _create(client, admin.headers)
    second = await _create(client, admin.headers)
    assert first["assignee_id"] == str(free.id) and second["assignee_id"] == str(free.id)
    third = await _create(client, admin.headers)  # free is at capacity, away is away
    assert third["assignee_id"] == str(busy.id)
    clock.advance(timedelta(days=7))
    admin = await factory.relogin(admin)
    back = await _create(client, admin.headers)
    assert back["assignee_id"] == str(away.id)


@pytest.mark.parametrize(
    ("conditions", "lead", "matches"),
    [
        ({"tags": ["vip"]}, {"tags": ["vip", "b2b"]}, True),
        ({"tags": ["vip"]}, {"tags": ["b2b"]}, False),
        ({"channel": ["WhatsApp"]}, {"channel": "whatsapp"}, True),
        ({"custom": {"branche": "IT"}}, {"custom": {"branche": "IT"}}, True),
        ({"custom": {"branche": ["Bau", "IT"]}}, {"custom": {"branche": "Handel"}}, False),
        ({"postal_code_prefix": ["20", "22"]}, {"custom": {"plz": "22767"}}, True),
        ({"postal_code_prefix": ["20"]}, {"custom": {"plz": "80331"}}, False),
    ],
)
async def test_conditions_and_fixed_user(
    client: httpx.AsyncClient,
    factory: Factory,
    conditions: dict[str, object],
    lead: dict[str, object],
    matches: bool,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    for key in ("branche", "plz"):
        await client.post(
            "/api/v1/custom-fields",
            headers=admin.headers,
            json={"key": key, "label": key, "type": "text"},
        )
    rep = await factory.user(org, "counselor")
    await _rule(
        client,
        admin.headers,
        name="fixed",
        strategy="fixed_user",
        fixed_user_id=str(rep.id),
        conditions=conditions,
    )
    created = await _create(client, admin.headers, **lead)
    assert (created["assignee_id"] == str(rep.id)) is matches


async def test_team_strategy_and_explicit_assignee_skips_rules(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    team = await factory.team(org)
    a = await factory.user(org, "counselor", team=team)
    b = await factory.user(org, "counselor", team=team)
    outsider = await factory.user(org, "counselor")
    await _rule(client, admin.headers, name="Team", strategy="team", team_id=str(team.id))
    got = {(await _create(client, admin.headers))["assignee_id"] for _ in range(4)}
    assert got == {str(a.id), str(b.id)}
    explicit = await _create(client, admin.headers, assignee_id=str(outsider.id))
    assert explicit["assignee_id"] == str(outsider.id)


async def test_rule_crud_validation_and_permissions(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor")
    base = "/api/v1/assignment/rules"
    bad_bodies: list[dict[str, object]] = [
        {"name": "x", "strategy": "round_robin"},
        {"name": "x", "strategy": "fixed_user"},
        {"name": "x", "strategy": "coin_flip", "user_ids": [str(rep.user.id)]},
        {
            "name": "x",
            "strategy": "round_robin",
            "user_ids": [str(rep.user.id)],
            "conditions": {"weather": "sunny"},
        },
        {"name": "x", "strategy": "round_robin", "user_ids": [new_uuid()]},
    ]
    for body in bad_bodies:
        assert (await client.post(base, headers=admin.headers, json=body)).status_code == 422
    assert (
        await client.post(
            base,
            headers=rep.headers,
            json={"name": "x", "strategy": "fixed_user", "fixed_user_id": rep.id},
        )
    ).status_code == 403
    rule = await _rule(client, admin.headers, name="r", strategy="fixed_user", fixed_user_id=rep.id)
    r = await client.patch(
        f"{base}/{rule['id']}", headers=admin.headers, json={"is_active": False, "name": "paused"}
    )
    assert r.json()["is_active"] is False and r.json()["name"] == "paused"
    assert (await _create(client, admin.headers))["assignee_id"] is None
    assert [x["name"] for x in (await client.get(base, headers=rep.headers)).json()] == ["paused"]
    assert (
        await client.patch(f"{base}/{rule['id']}", headers=rep.headers, json={"name": "x"})
    ).status_code == 403
    other_admin = await factory.member(await factory.org())
    assert (
        await client.delete(f"{base}/{rule['id']}", headers=other_admin.headers)
    ).status_code == 404
    assert (await client.delete(f"{base}/{rule['id']}", headers=admin.headers)).status_code == 204
