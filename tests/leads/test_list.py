"""Lead list: filters, sorting, offset and keyset paging, row scope."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from leadflow.kit.clock import clock
from leadflow.leads.repository import ESTIMATE_SECONDS
from tests.fixtures.factories import Factory

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def _ids(client: httpx.AsyncClient, headers: dict[str, str], **params: object) -> list[str]:
    r = await client.get("/api/v1/leads", headers=headers, params=params)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


async def test_filters(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    a = await factory.lead(
        org,
        first_name="Anna",
        last_name="Schmidt",
        email="anna@firma.de",
        company="Firma AG",
        status="new",
        tags=["vip", "demo"],
        source="website",
        created_at=T0,
        assignee_id=rep.id,
        custom={"branche": "IT"},
        needs_action=True,
    )
    b = await factory.lead(
        org,
        first_name="Bernd",
        last_name="Meyer",
        phone="+4930123456",
        status="won",
        tags=["vip"],
        source="messe",
        created_at=T0 + timedelta(days=2),
        custom={"branche": "Bau"},
    )
    c = await factory.lead(
        org,
        first_name="Clara",
        last_name="Schmidt-Ott",
        status="lost",
        source="website",
        created_at=T0 + timedelta(days=4),
    )
    h = admin.headers
    assert set(await _ids(client, h, q="SCHMIDT")) == {str(a.id), str(c.id)}
    assert await _ids(client, h, q="firma ag") == [str(a.id)]
    assert await _ids(client, h, q="30123") == [str(b.id)]
    assert await _ids(client, h, q="100%") == []
    assert set(await _ids(client, h, status=["new", "won"])) == {str(a.id), str(b.id)}
    assert set(await _ids(client, h, tag="vip")) == {str(a.id), str(b.id)}
    assert await _ids(client, h, tag=["vip", "demo"]) == [str(a.id)]
    assert set(await _ids(client, h, source="website")) == {str(a.id), str(c.id)}
    assert await _ids(client, h, assigned_to=str(rep.id)) == [str(a.id)]
    assert set(await _ids(client, h, assigned_to="none")) == {str(b.id), str(c.id)}
    assert await _ids(client, h, assigned_to="me") == []
    window = {
        "date_from": (T0 + timedelta(days=1)).isoformat(),
        "date_to": (T0 + timedelta(days=3)).isoformat(),
    }
    assert await _ids(client, h, **window) == [str(b.id)]
    assert await _ids(client, h, needs_action="true") == [str(a.id)]
    assert await _ids(client, h, **{"cf.branche": "Bau"}) == [str(b.id)]
    bad = await client.get("/api/v1/leads", headers=h, params={"assigned_to": "someone"})
    assert bad.status_code == 422
    bad = await client.get("/api/v1/leads", headers=h, params={"sort": "colour"})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    bad = await client.get("/api/v1/leads", headers=h, params={"limit": 501})
    assert bad.status_code == 422


async def test_sorting_and_offset_paging(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    leads = [
        await factory.lead(
            org,
            first_name=n,
            last_name="X",
            score=s,
            created_at=T0 + timedelta(hours=i),
            last_contacted_at=(T0 + timedelta(days=i)) if i % 2 else None,
        )
        for i, (n, s) in enumerate([("Dora", 10), ("Anton", 90), ("Carl", 50), ("Bea", 70)])
    ]
    ids = [str(x.id) for x in leads]
    h = admin.headers
    assert await _ids(client, h) == ids[::-1]
    assert await _ids(client, h, sort="created_at") == ids
    assert await _ids(client, h, sort="name") == [ids[1], ids[3], ids[2], ids[0]]
    assert await _ids(client, h, sort="-score") == [ids[1], ids[3], ids[2], ids[0]]
    # Nulls last in both directions.
    assert await _ids(client, h, sort="-last_contacted_at") == [ids[3], ids[1], ids[2], ids[0]]
    assert await _ids(client, h, sort="last_contacted_at") == [ids[1], ids[3], ids[0], ids[2]]
    page = (await client.get("/api/v1/leads", headers=h, params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 1
    assert [i["id"] for i in page["items"]] == ids[::-1][1:3]


async def test_keyset_cursor_walks_every_row_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    created = [
        await factory.lead(org, created_at=T0 + timedelta(minutes=i // 2)) for i in range(7)
    ]  # pairs share created_at: ties broken by id
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, object] = {"limit": 3, "sort": "-created_at"}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/api/v1/leads", headers=admin.headers, params=params)).json()  # type: ignore[arg-type]
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(str(x.id) for x in created)
    assert len(seen) == len(set(seen)) == 7
    bad = await client.get("/api/v1/leads", headers=admin.headers, params={"cursor": "garbage"})
    assert bad.status_code == 422
    nullable = await client.get(
        "/api/v1/leads",
        headers=admin.headers,
        params={"cursor": cursor or "x", "sort": "next_action_at"},
    )
    assert nullable.status_code == 422


async def test_total_is_capped_and_flagged(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    app.state.settings.list_count_cap = 3
    org = await factory.org()
    admin = await factory.member(org)
    for _ in range(5):
        await factory.lead(org)
    body = (await client.get("/api/v1/leads", headers=admin.headers, params={"limit": 2})).json()
    assert body["total_is_estimate"] is True
    assert body["total"] >= 3
    assert len(body["items"]) == 2
    # A short page needs no count: its total is exact even above the cap.
    whole = (await client.get("/api/v1/leads", headers=admin.headers)).json()
    assert whole["total"] == 5 and whole["total_is_estimate"] is False
    assert len(whole["items"]) == 5
    # A text search with more matches than the cap pages the usual way, total estimated.
    search = (
        await client.get("/api/v1/leads", headers=admin.headers, params={"q": "lead", "limit": 2})
    ).json()
    assert search["total_is_estimate"] is True and len(search["items"]) == 2
    small = (
        await client.get(
            "/api/v1/leads", headers=admin.headers, params={"limit": 1, "status": "won"}
        )
    ).json()
    assert small["total"] == 0 and small["total_is_estimate"] is False


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_over_cap_estimate_is_reused_for_a_few_seconds(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broad filter's planner estimate is asked once per filter and organisation, then
    reused until ESTIMATE_SECONDS have passed on the clock."""
    app.state.settings.list_count_cap = 3
    explains: list[str] = []
    fetch = asyncpg.Connection.fetch

    async def watched(self: asyncpg.Connection, query: str, *args: object, **kw: object) -> object:
        if query.lstrip().startswith("EXPLAIN"):
            explains.append(query)
        return await fetch(self, query, *args, **kw)

    monkeypatch.setattr(asyncpg.Connection, "fetch", watched)
    clock.freeze(T0)
    orgs = [await factory.org(), await factory.org()]
    admins = [await factory.member(org) for org in orgs]
    for org in orgs:
        for _ in range(5):
            await factory.lead(org, status="new")

    async def page(who: int, **params: str) -> dict[str, object]:
        r = await client.get(
            "/api/v1/leads", headers=admins[who].headers, params={"limit": "2", **params}
        )
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        assert body["total_is_estimate"] is True and len(body["items"]) == 2  # type: ignore[arg-type]
        return body

    first = await page(0)
    assert len(explains) == 1
    clock.advance(timedelta(seconds=ESTIMATE_SECONDS - 1))
    assert (await page(0))["total"] == first["total"]
    assert len(explains) == 1  # reused
    await page(0, status="new")  # another filter
    await page(1)  # another organisation
    assert len(explains) == 3
    clock.advance(timedelta(seconds=2))
    await page(0)
    assert len(explains) == 4  # asked again


@pytest.mark.parametrize("alias", ["/leads", "/api/leads"])
async def test_aliases_list(client: httpx.AsyncClient, factory: Factory, alias: str) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await factory.lead(org)
    body = (await client.get(alias, headers=admin.headers)).json()
    assert set(body) >= {"items", "total", "limit", "offset"} and body["total"] == 1


async def test_row_scope_applies_to_list_get_update_and_export(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    north, south = await factory.team(org), await factory.team(org)
    manager = await factory.member(org, "manager", team=north)
    rep_n = await factory.member(org, "counselor", team=north)
    rep_s = await factory.member(org, "counselor", team=south)
    viewer = await factory.member(org, "viewer")
    mine = await factory.lead(org, assignee_id=rep_n.user.id)
    created = await factory.lead(org, created_by=rep_n.user.id)
    theirs = await factory.lead(org, assignee_id=rep_s.user.id)
    nobody = await factory.lead(org)
    everything = {str(x.id) for x in (mine, created, theirs, nobody)}
    assert set(await _ids(client, rep_n.headers)) == {str(mine.id), str(created.id)}
    assert set(await _ids(client, rep_s.headers)) == {str(theirs.id)}
    assert set(await _ids(client, manager.headers)) == {str(mine.id), str(created.id)}
    assert set(await _ids(client, viewer.headers)) == everything
    assert (
        await client.get(f"/api/v1/leads/{theirs.id}", headers=rep_n.headers)
    ).status_code == 404
    assert (
        await client.patch(
            f"/api/v1/leads/{theirs.id}", headers=rep_n.headers, json={"company": "x"}
        )
    ).status_code == 404
    assert (
        await client.patch(
            f"/api/v1/leads/{theirs.id}", headers=manager.headers, json={"company": "x"}
        )
    ).status_code == 404
    bulk = await client.post(
        "/api/v1/leads/bulk",
        headers=rep_n.headers,
        json={"ids": [str(theirs.id), str(mine.id)], "action": "tag_add", "value": "hot"},
    )
    assert bulk.json() == {"matched": 1, "updated": 1}
    export = await client.post("/api/v1/leads/export", headers=manager.headers, json={})
    lines = export.text.strip().splitlines()
    assert len(lines) == 3  # header + the two team leads
    assert str(theirs.id) not in export.text


async def test_search_pages_and_counts_from_one_scan(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    h = admin.headers
    kramers = [
        await factory.lead(
            org, first_name=f"K{i}", last_name="Kramer", created_at=T0 + timedelta(hours=i)
        )
        for i in range(7)
    ]
    for i in range(3):
        await factory.lead(org, last_name="Other", created_at=T0 + timedelta(hours=20 + i))
    newest_first = [str(x.id) for x in reversed(kramers)]

    async def page(**params: str | int) -> dict[str, object]:
        r = await client.get("/api/v1/leads", headers=h, params={"q": "kramer", **params})
        assert r.status_code == 200, r.text
        return r.json()

    first = await page(limit=3)
    assert [i["id"] for i in first["items"]] == newest_first[:3]  # type: ignore[attr-defined]
    assert first["total"] == 7 and first["total_is_estimate"] is False
    assert "match_total" not in first["items"][0]  # type: ignore[index]
    second = await page(limit=3, offset=3)
    assert [i["id"] for i in second["items"]] == newest_first[3:6]  # type: ignore[attr-defined]
    assert second["total"] == 7
    last = await page(limit=3, offset=6)
    assert [i["id"] for i in last["items"]] == newest_first[6:]  # type: ignore[attr-defined]
    beyond = await page(limit=3, offset=9)
    assert beyond["items"] == [] and beyond["total"] == 7
    by_name = await page(limit=2, sort="name")
    assert [i["first_name"] for i in by_name["items"]] == ["K0", "K1"]  # type: ignore[attr-defined]
    assert by_name["total"] == 7
    none = await page(q="nobody-matches")
    assert none["items"] == [] and none["total"] == 0


async def test_hand_made_cursors_are_rejected(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await factory.lead(org)

    def cursor(sort: str, value: object) -> str:
        raw = json.dumps({"s": sort, "v": value, "id": "01a20980-6a25-7032-9a0b-19719b240a1f"})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    for sort, value in (
        ("name", 123),
        ("score", "high"),
        ("score", True),
        ("-created_at", "2026-01-05T09:00:00"),  # no timezone
        ("-created_at", 5),
        ("score", 10**30),  # beyond the column's integer range
    ):
        r = await client.get(
            "/api/v1/leads",
            headers=admin.headers,
            params={"sort": sort, "cursor": cursor(sort, value)},
        )
        assert r.status_code == 422, (sort, value, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    ok = await client.get(
        "/api/v1/leads",
        headers=admin.headers,
        params={"sort": "name", "cursor": cursor("name", "Zz")},
    )
    assert ok.status_code == 200, ok.text


async def test_needs_action_lists_flagged_then_never_analysed(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """Flagged leads first (soonest next action, none last), then never-analysed ones; an
    analysed lead without the flag is not listed; the limit spans both parts."""
    org = await factory.org()
    admin = await factory.member(org)
    soon, later = datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 2, 1, tzinfo=UTC)
    analysed = datetime(2024, 1, 1, tzinfo=UTC)
    f_late = await factory.lead(org, needs_action=True, next_action_at=later, analyzed_at=analysed)
    f_none = await factory.lead(org, needs_action=True, analyzed_at=analysed)
    f_soon = await factory.lead(org, needs_action=True, next_action_at=soon, analyzed_at=analysed)
    never = await factory.lead(org, next_action_at=soon)
    await factory.lead(org, analyzed_at=analysed)  # analysed, not flagged: not listed

    async def listed(limit: int) -> list[str]:
        r = await client.get(
            "/api/v1/leads/needs-action", params={"limit": limit}, headers=admin.headers
        )
        assert r.status_code == 200, r.text
        return [lead["id"] for lead in r.json()["leads"]]

    expected = [str(x.id) for x in (f_soon, f_late, f_none, never)]
    assert await listed(10) == expected
    assert await listed(3) == expected[:3]
    assert await listed(4) == expected
