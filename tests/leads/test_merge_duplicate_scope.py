"""Merge needs `leads:delete`; a duplicate 409 names the existing lead only inside scope."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.lead import Lead
from tests.fixtures.factories import Factory


async def test_merge_without_delete_permission_is_403_and_changes_nothing(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")  # leads:write, no leads:delete
    keep = await factory.lead(org, created_by=rep.user.id, notes="keep")
    other = await factory.lead(org, created_by=rep.user.id, notes="other")
    r = await client.post(
        f"/api/v1/leads/{keep.id}/merge", headers=rep.headers, json={"other_ids": [str(other.id)]}
    )
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "missing_permission"
    assert r.json()["permission"] == "leads:delete"
    rows = (
        await session.execute(
            select(Lead.id, Lead.deleted_at, Lead.merged_into_id, Lead.notes).where(
                Lead.id.in_([keep.id, other.id])
            )
        )
    ).all()
    assert {(r.deleted_at, r.merged_into_id) for r in rows} == {(None, None)}
    assert {r.id: r.notes for r in rows} == {keep.id: "keep", other.id: "other"}


async def test_merge_outside_scope_is_404_before_403(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    colleague = await factory.user(org, "counselor")
    mine = await factory.lead(org, created_by=rep.user.id)
    theirs = await factory.lead(org, created_by=colleague.id)
    for target, others in ((theirs, [mine]), (mine, [theirs])):
        r = await client.post(
            f"/api/v1/leads/{target.id}/merge",
            headers=rep.headers,
            json={"other_ids": [str(o.id) for o in others]},
        )
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "not_found"


async def test_merge_with_delete_permission_still_works(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    manager = await factory.member(org, "manager")  # holds leads:delete
    keep = await factory.lead(org, created_by=manager.user.id)
    other = await factory.lead(org, created_by=manager.user.id)
    r = await client.post(
        f"/api/v1/leads/{keep.id}/merge",
        headers=manager.headers,
        json={"other_ids": [str(other.id)]},
    )
    assert r.status_code == 200, r.text


async def test_duplicate_conflict_names_only_a_lead_in_scope(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    colleague = await factory.user(org, "counselor")
    hidden = await factory.lead(
        org,
        created_by=colleague.id,
        first_name="Geheim",
        last_name="Kundin",
        email="hidden@example.com",
        phone="+4930999999",
    )
    visible = await factory.lead(org, created_by=rep.user.id, email="mine@example.com")

    r = await client.post(
        "/api/v1/leads",
        headers=rep.headers,
        json={"first_name": "X", "email": "hidden@example.com"},
    )
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "duplicate_lead"
    assert "existing_id" not in body
    for secret in (str(hidden.id), "Geheim", "Kundin", "+4930999999"):
        assert secret not in r.text

    r = await client.post(
        "/api/v1/leads", headers=rep.headers, json={"first_name": "Y", "email": "mine@example.com"}
    )
    assert r.status_code == 409
    assert r.json()["existing_id"] == str(visible.id)

    own = await factory.lead(org, created_by=rep.user.id, email="own@example.com")
    r = await client.patch(
        f"/api/v1/leads/{own.id}", headers=rep.headers, json={"phone": "+49 30 999999"}
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "duplicate_lead" and "existing_id" not in r.json()
    assert str(hidden.id) not in r.text
    r = await client.patch(
        f"/api/v1/leads/{own.id}", headers=rep.headers, json={"email": "mine@example.com"}
    )
    assert r.status_code == 409 and r.json()["existing_id"] == str(visible.id)
    after = await client.get(f"/api/v1/leads/{own.id}", headers=rep.headers)
    assert after.json()["email"] == "own@example.com" and after.json()["phone"] is None
