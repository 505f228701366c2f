"""Lead list statements are kept per filter shape and reused with new values: requests that
share a shape must still see only their own organisation's, team's and filter's rows."""

from __future__ import annotations

import httpx

from tests.fixtures.factories import Factory
from tests.leads.test_list import _ids


async def test_alternating_organisations_with_the_same_filters(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    orgs = [await factory.org(), await factory.org()]
    admins = [await factory.member(o) for o in orgs]
    own: list[list[str]] = []
    for org in orgs:
        leads = [
            await factory.lead(
                org,
                first_name=first,
                last_name="Kramer",
                status="won",
                tags=["vip"],
                custom={"branche": "IT"},
            )
            for first in ("Anna", "Bert")
        ]
        own.append(sorted(str(x.id) for x in leads))
    shapes: list[dict[str, object]] = [
        {},
        {"tag": "vip"},
        {"cf.branche": "IT"},
        {"status": ["won", "new"]},
        {"q": "kramer"},
        {"q": "kramer", "offset": 1, "limit": 1},
        {"q": "kramer", "tag": "vip", "cf.branche": "IT", "status": ["won"], "sort": "name"},
    ]
    for params in shapes:
        for i in (0, 1, 0, 1):
            got = await _ids(client, admins[i].headers, **params)
            if params.get("offset"):
                assert len(got) == 1 and got[0] in own[i], params
            else:
                assert sorted(got) == own[i], params


async def test_alternating_teams_and_reps(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    teams = [await factory.team(org), await factory.team(org)]
    managers = [await factory.member(org, "manager", team=t) for t in teams]
    reps = [await factory.member(org, "counselor", team=t) for t in teams]
    leads = [await factory.lead(org, assignee_id=r.user.id) for r in reps]
    await factory.lead(org)  # nobody's: no manager or rep sees it
    for i in (0, 1, 0, 1):
        assert await _ids(client, managers[i].headers) == [str(leads[i].id)]
        assert await _ids(client, reps[i].headers, assigned_to="me") == [str(leads[i].id)]
        assert await _ids(client, managers[i].headers, assigned_to="me") == []


async def test_custom_field_keys_one_after_another(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    only_a = await factory.lead(org, custom={"a": "X"})
    only_b = await factory.lead(org, custom={"b": "X"})
    both = await factory.lead(org, custom={"a": "X", "b": "X"})
    h = admin.headers
    for _ in range(2):
        assert sorted(await _ids(client, h, **{"cf.a": "X"})) == sorted(
            [str(only_a.id), str(both.id)]
        )
        assert sorted(await _ids(client, h, **{"cf.b": "X"})) == sorted(
            [str(only_b.id), str(both.id)]
        )
        assert await _ids(client, h, **{"cf.a": "X", "cf.b": "X"}) == [str(both.id)]
        assert await _ids(client, h, **{"cf.b": "X", "cf.a": "X"}) == [str(both.id)]
        assert await _ids(client, h, **{"cf.a": "Y"}) == []


async def test_assigned_to_me_for_an_api_key_matches_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """An API key is nobody: `assigned_to=me` must not turn into "unassigned"."""
    org = await factory.org()
    admin = await factory.member(org)
    unassigned = await factory.lead(org)
    r = await client.post(
        "/api/v1/admin/api-keys",
        headers=admin.headers,
        json={"name": "Zapier", "scopes": ["leads:read"]},
    )
    assert r.status_code == 201, r.text
    key = {"X-API-Key": r.json()["api_key"]}
    assert await _ids(client, key) == [str(unassigned.id)]
    assert await _ids(client, key, assigned_to="none") == [str(unassigned.id)]
    assert await _ids(client, key, assigned_to="me") == []
