"""Audit rows: written with the change, filterable, immutable, tenant-scoped."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import new_uuid
from tests.fixtures.factories import Factory


async def test_mutation_is_audited_with_request_context(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/users",
        headers={**admin.headers, "X-Request-ID": "rq-42"},
        json={
            "email": "aud1@example.com",
            "full_name": "Aud One",
            "role": "viewer",
            "password": "secret-password-9",
        },
    )
    user_id = r.json()["id"]
    logs = await client.get(
        "/api/v1/admin/audit-logs", headers=admin.headers, params={"action": "user.create"}
    )
    assert logs.status_code == 200
    body = logs.json()
    assert body["total"] == 1
    entry = body["items"][0]
    assert entry["resource_type"] == "user" and entry["resource_id"] == user_id
    assert entry["actor_user_id"] == admin.id
    assert entry["request_id"] == "rq-42"
    assert entry["ip"] == "127.0.0.1"
    assert entry["after"]["email"] == "aud1@example.com"
    assert "password_hash" not in entry["after"]
    assert "secret-password-9" not in str(entry)
    detail = await client.get(f"/api/v1/admin/audit-logs/{entry['id']}", headers=admin.headers)
    assert detail.json() == entry

    await client.patch(
        f"/api/v1/users/{user_id}", headers=admin.headers, json={"full_name": "Aud Renamed"}
    )
    upd = (
        await client.get(
            "/api/v1/admin/audit-logs",
            headers=admin.headers,
            params={"resource_id": user_id, "action": "user.update"},
        )
    ).json()
    assert upd["items"][0]["before"] == {"full_name": "Aud One"}
    assert upd["items"][0]["after"] == {"full_name": "Aud Renamed"}


async def test_failed_mutation_leaves_no_audit_row(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={"email": "x@example.com", "full_name": "X", "role": "nope"},
    )
    assert r.status_code == 422
    logs = (
        await client.get(
            "/api/v1/admin/audit-logs", headers=admin.headers, params={"action": "user.create"}
        )
    ).json()
    assert logs["total"] == 0


async def test_filters_and_search(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await client.post("/api/v1/teams", headers=admin.headers, json={"name": "Alpha"})
    await client.post("/api/v1/admin/api-keys", headers=admin.headers, json={"name": "K"})
    by_res = (
        await client.get(
            "/api/v1/admin/audit-logs", headers=admin.headers, params={"resource": "team"}
        )
    ).json()
    assert [i["action"] for i in by_res["items"]] == ["team.create"]
    by_user = (
        await client.get(
            "/api/v1/admin/audit-logs", headers=admin.headers, params={"user_id": admin.id}
        )
    ).json()
    assert by_user["total"] == 2
    search = (
        await client.get(
            "/api/v1/admin/audit-logs", headers=admin.headers, params={"search": "api_key"}
        )
    ).json()
    assert [i["action"] for i in search["items"]] == ["api_key.create"]
    future = (
        await client.get(
            "/api/v1/admin/audit-logs",
            headers=admin.headers,
            params={"date_from": "2999-01-01T00:00:00Z"},
        )
    ).json()
    assert future["total"] == 0
    alias = await client.get("/api/audit-logs", headers=admin.headers)
    assert alias.status_code == 200 and alias.json()["total"] == 2
    assert (
        await client.get(
            "/api/v1/admin/audit-logs", headers=admin.headers, params={"date_from": "yesterday"}
        )
    ).status_code == 422


async def test_audit_is_tenant_scoped_and_admin_only(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org_a, org_b = await factory.org(), await factory.org()
    admin_a, admin_b = await factory.member(org_a), await factory.member(org_b)
    await client.post("/api/v1/teams", headers=admin_b.headers, json={"name": "B-team"})
    b_entry = (await client.get("/api/v1/admin/audit-logs", headers=admin_b.headers)).json()[
        "items"
    ][0]
    assert (
        await client.get(f"/api/v1/admin/audit-logs/{b_entry['id']}", headers=admin_a.headers)
    ).status_code == 404
    assert (await client.get("/api/v1/admin/audit-logs", headers=admin_a.headers)).json()[
        "total"
    ] == 0
    assert (
        await client.get(f"/api/v1/admin/audit-logs/{new_uuid()}", headers=admin_a.headers)
    ).status_code == 404
    for role in ("counselor", "viewer", "manager"):
        m = await factory.member(org_a, role)
        assert (await client.get("/api/v1/admin/audit-logs", headers=m.headers)).status_code == 403


async def test_no_endpoint_changes_audit_rows(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await client.post("/api/v1/teams", headers=admin.headers, json={"name": "T"})
    entry = (await client.get("/api/v1/admin/audit-logs", headers=admin.headers)).json()["items"][0]
    for method in ("PATCH", "PUT", "DELETE"):
        r = await client.request(
            method, f"/api/v1/admin/audit-logs/{entry['id']}", headers=admin.headers, json={}
        )
        assert r.status_code == 405
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_postgres_trigger_rejects_update_and_delete(
    factory: Factory, session: AsyncSession, dialect: str
) -> None:
    assert dialect == "postgresql"
    org = await factory.org()
    await factory.member(org)
    from leadflow.audit.service import record

    await record(
        session,
        actor=None,
        organization_id=org.id,
        action="x.test",
        resource_type="x",
        resource_id="1",
    )
    await session.commit()
    for stmt in ("UPDATE audit_logs SET action = 'tampered'", "DELETE FROM audit_logs"):
        nested = await session.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text(stmt))
        await nested.rollback()
