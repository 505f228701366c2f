"""/api/v1/admin/api-keys and authenticating with a key."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.api_key import ApiKey
from leadflow.worker.jobs import JobContext, RecordingQueue, run_job
from tests.conftest import new_uuid
from tests.fixtures.factories import Factory


async def test_key_is_shown_once_and_stored_hashed(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    queue: RecordingQueue,
    jobs: JobContext,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/admin/api-keys",
        headers=admin.headers,
        json={"name": "Zapier", "scopes": ["users:read"]},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["api_key"]
    assert key.startswith("lf_") and created["prefix"] == key[:11]
    listed = (await client.get("/api/v1/admin/api-keys", headers=admin.headers)).json()
    assert len(listed) == 1
    assert "api_key" not in listed[0] and listed[0]["last_used_at"] is None
    row = await session.scalar(select(ApiKey))
    assert row is not None and key not in (row.key_hash, row.prefix)

    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        assert (await client.get("/api/v1/users", headers=headers)).status_code == 200
    # Scope enforcement: users:read only.
    r = await client.get("/api/v1/admin/audit-logs", headers={"X-API-Key": key})
    assert r.status_code == 403
    # Read-only requests record the key's use through a job (they do not write themselves).
    touches = [args for name, args, _ in queue.items if name == "auth.touch_api_key"]
    assert touches
    for args in touches:
        await run_job(jobs, "auth.touch_api_key", *args)
    listed = (await client.get("/api/v1/admin/api-keys", headers=admin.headers)).json()
    assert listed[0]["last_used_at"] is not None


async def test_revoked_key_stops_at_once(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    created = (
        await client.post("/api/v1/admin/api-keys", headers=admin.headers, json={"name": "CI"})
    ).json()
    h = {"X-API-Key": created["api_key"]}
    assert (await client.get("/api/v1/users", headers=h)).status_code == 200
    r = await client.delete(f"/api/v1/admin/api-keys/{created['id']}", headers=admin.headers)
    assert r.status_code == 204
    assert (await client.get("/api/v1/users", headers=h)).status_code == 401
    assert (
        await client.get("/api/v1/users", headers={"X-API-Key": "lf_made_up_key"})
    ).status_code == 401


async def test_key_scopes_cannot_exceed_creator(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    bad = await client.post(
        "/api/v1/admin/api-keys",
        headers=admin.headers,
        json={"name": "x", "scopes": ["leads:teleport"]},
    )
    assert bad.status_code == 422
    empty = await client.post("/api/v1/admin/api-keys", headers=admin.headers, json={"name": ""})
    assert empty.status_code == 422


async def test_other_org_key_is_404_and_non_admin_403(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org_a, org_b = await factory.org(), await factory.org()
    admin_a, admin_b = await factory.member(org_a), await factory.member(org_b)
    key_b = (
        await client.post("/api/v1/admin/api-keys", headers=admin_b.headers, json={"name": "B"})
    ).json()
    assert (
        await client.delete(f"/api/v1/admin/api-keys/{key_b['id']}", headers=admin_a.headers)
    ).status_code == 404
    assert (
        await client.delete(f"/api/v1/admin/api-keys/{new_uuid()}", headers=admin_a.headers)
    ).status_code == 404
    assert (
        await client.get("/api/v1/users", headers={"X-API-Key": key_b["api_key"]})
    ).status_code == 200
    rep = await factory.member(org_a, "counselor")
    assert (await client.get("/api/v1/admin/api-keys", headers=rep.headers)).status_code == 403
    assert (
        await client.post("/api/v1/admin/api-keys", headers=rep.headers, json={"name": "mine"})
    ).status_code == 403
