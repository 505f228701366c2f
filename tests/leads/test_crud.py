"""Lead record: create, read, update, notes, delete, versions, duplicates on create."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.lead import Lead
from tests.conftest import new_uuid
from tests.fixtures.factories import Factory


async def _count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Lead)) or 0)


async def test_create_normalises_and_derives(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/leads",
        headers=admin.headers,
        json={
            "name": "Lea Kramer",
            "email": " Lea.Kramer@Example.COM ",
            "phone": "0151 23456789",
            "company": "Kramer GmbH",
            "channel": "WhatsApp",
            "source": "website",
            "utm_source": "google",
            "tags": ["vip", "vip", "demo"],
            "disg_type": "i",
            "notes": "Hat Demo gesehen, wartet auf Angebot",
        },
    )
    assert r.status_code == 201, r.text
    lead = r.json()
    assert lead["first_name"] == "Lea" and lead["last_name"] == "Kramer"
    assert lead["full_name"] == "Lea Kramer"
    assert lead["email"] == "lea.kramer@example.com"
    assert lead["phone"] == "+4915123456789"
    assert lead["status"] == "new" and lead["stage"]["name"] == "New"
    assert lead["tags"] == ["vip", "demo"]
    assert lead["disg_type"] == "I"
    assert lead["created_by"] == admin.id
    assert lead["version"] == 1
    assert lead["notes"] == "Hat Demo gesehen, wartet auf Angebot"
    got = await client.get(f"/api/v1/leads/{lead['id']}", headers=admin.headers)
    assert got.status_code == 200 and got.headers["etag"] == '"1"'
    for alias in ("/leads", "/api/leads"):
        assert (await client.get(f"{alias}/{lead['id']}", headers=admin.headers)).status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"first_name": "A", "email": "not-an-email"}, "email"),
        ({"first_name": "A", "phone": "12"}, "phone"),
        ({"first_name": "A", "status": "dreaming"}, "status"),
        ({"first_name": "A", "disg_type": "X"}, "disg_type"),
        ({"first_name": "A", "score": 101}, "score"),
        ({"first_name": "A", "unknown_field": 1}, "unknown_field"),
        ({"first_name": "A", "assignee_id": "00000000-0000-0000-0000-000000000001"}, "assignee_id"),
        ({"first_name": "A", "next_action_at": "2026-01-01T10:00:00"}, "next_action_at"),
        ({"first_name": "A", "custom": {"nope": 1}}, "nope"),
        ({}, "body"),
    ],
)
async def test_create_rejects_bad_fields_and_writes_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    payload: dict[str, object],
    field: str,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    before = await _count(session)
    r = await client.post("/api/v1/leads", headers=admin.headers, json=payload)
    assert r.status_code == 422, r.text
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert any(field in e["loc"] for e in body["errors"]), body
    assert await _count(session) == before


async def test_duplicate_on_create_is_409_unless_allowed(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    first = (
        await client.post(
            "/api/v1/leads",
            headers=admin.headers,
            json={"first_name": "A", "email": "dup@example.com"},
        )
    ).json()
    r = await client.post(
        "/api/v1/leads", headers=admin.headers, json={"first_name": "B", "email": "DUP@example.com"}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "duplicate_lead" and r.json()["existing_id"] == first["id"]
    by_phone = await client.post(
        "/api/v1/leads", headers=admin.headers, json={"first_name": "C", "phone": "+49 30 1234567"}
    )
    assert by_phone.status_code == 201
    again = await client.post(
        "/api/v1/leads", headers=admin.headers, json={"first_name": "D", "phone": "030 1234567"}
    )
    assert again.status_code == 409
    allowed = await client.post(
        "/api/v1/leads?on_duplicate=allow",
        headers=admin.headers,
        json={"first_name": "B", "email": "dup@example.com"},
    )
    assert allowed.status_code == 201
    # Another organisation may hold the same email.
    other = await factory.member(await factory.org())
    assert (
        await client.post(
            "/api/v1/leads",
            headers=other.headers,
            json={"first_name": "X", "email": "dup@example.com"},
        )
    ).status_code == 201


async def test_patch_partial_with_versions(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    lead = (
        await client.post(
            "/api/v1/leads",
            headers=admin.headers,
            json={"first_name": "Max", "last_name": "Muster"},
        )
    ).json()
    url = f"/api/v1/leads/{lead['id']}"
    r = await client.patch(url, headers=admin.headers, json={"company": "ACME", "version": 1})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["company"] == "ACME"
    assert r.json()["first_name"] == "Max"
    stale = await client.patch(url, headers=admin.headers, json={"company": "Old", "version": 1})
    assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
    stale_hdr = await client.patch(
        url, headers={**admin.headers, "If-Match": '"1"'}, json={"company": "Old"}
    )
    assert stale_hdr.status_code == 409
    ok_hdr = await client.patch(
        url, headers={**admin.headers, "If-Match": '"2"'}, json={"last_name": "Mustermann"}
    )
    assert ok_hdr.status_code == 200 and ok_hdr.json()["full_name"] == "Max Mustermann"
    unknown = await client.patch(url, headers=admin.headers, json={"colour": "blue"})
    assert unknown.status_code == 422
    bad_phone = await client.patch(url, headers=admin.headers, json={"phone": "abc"})
    assert bad_phone.status_code == 422
    assert (await client.get(url, headers=admin.headers)).json()["company"] == "ACME"


async def test_notes_edit_and_soft_delete(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    lead = (
        await client.post(
            "/api/v1/leads", headers=admin.headers, json={"first_name": "Nora", "notes": "first"}
        )
    ).json()
    url = f"/api/v1/leads/{lead['id']}"
    r = await client.patch(f"{url}/notes", headers=admin.headers, json={"notes": "second"})
    assert r.status_code == 200 and r.json()["notes"] == "second"
    assert (
        await client.patch(f"{url}/notes", headers=admin.headers, json={"note": "x"})
    ).status_code == 422
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    listing = (await client.get("/api/v1/leads", headers=admin.headers)).json()
    assert listing["total"] == 0
    audit = (
        await client.get(
            "/api/v1/admin/audit-logs", headers=admin.headers, params={"resource_id": lead["id"]}
        )
    ).json()
    assert {"lead.create", "lead.notes", "lead.delete"} <= {i["action"] for i in audit["items"]}


async def test_other_org_lead_is_404_everywhere(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org_a, org_b = await factory.org(), await factory.org()
    admin_a = await factory.member(org_a)
    lead_b = await factory.lead(org_b)
    base = f"/api/v1/leads/{lead_b.id}"
    calls = [
        ("GET", base, None),
        ("PATCH", base, {"company": "x"}),
        ("DELETE", base, None),
        ("PATCH", f"{base}/notes", {"notes": "x"}),
        ("PATCH", f"{base}/status", {"status": "won"}),
        ("POST", f"{base}/assign", {"assignee_id": admin_a.id}),
        ("POST", f"{base}/consents", {"channel": "email", "granted": True, "source": "form"}),
        ("GET", f"{base}/consents", None),
        ("GET", f"{base}/duplicates", None),
        ("POST", f"{base}/merge", {"other_ids": [new_uuid()]}),
    ]
    for method, url, body in calls:
        r = await client.request(method, url, headers=admin_a.headers, json=body)
        assert r.status_code == 404, (method, url, r.status_code)
    unknown = await client.get(f"/api/v1/leads/{new_uuid()}", headers=admin_a.headers)
    assert unknown.status_code == 404


async def test_viewer_is_read_only_and_counselor_cannot_delete(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    rep = await factory.member(org, "counselor")
    lead = await factory.lead(org, created_by=rep.user.id)
    assert (await client.get(f"/api/v1/leads/{lead.id}", headers=viewer.headers)).status_code == 200
    for method, url, body in [
        ("POST", "/api/v1/leads", {"first_name": "X"}),
        ("PATCH", f"/api/v1/leads/{lead.id}", {"company": "x"}),
        ("PATCH", f"/api/v1/leads/{lead.id}/status", {"status": "won"}),
        ("POST", f"/api/v1/leads/{lead.id}/assign", {"assignee_id": rep.id}),
        ("DELETE", f"/api/v1/leads/{lead.id}", None),
        ("POST", "/api/v1/leads/export", {}),
    ]:
        r = await client.request(method, url, headers=viewer.headers, json=body)
        assert r.status_code == 403, (method, url)
    assert (await client.delete(f"/api/v1/leads/{lead.id}", headers=rep.headers)).status_code == 403
    assert (
        await client.post(
            f"/api/v1/leads/{lead.id}/assign", headers=rep.headers, json={"assignee_id": rep.id}
        )
    ).status_code == 403
