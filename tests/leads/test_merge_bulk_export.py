"""Duplicates and merge, bulk actions, CSV/XLSX export."""

from __future__ import annotations

import csv
import io
import uuid

import httpx
from fastapi import FastAPI
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.lead_history import Consent
from tests.fixtures.factories import Factory

EXPECTED_HEADER = (
    "id,created_at,status,first_name,last_name,email,phone,tags,source,"
    "utm_source,utm_medium,utm_campaign,last_contacted_at"
)


async def test_duplicates_exact_and_fuzzy(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    base = await factory.lead(
        org,
        first_name="Johannes",
        last_name="Müller",
        company="Müller Bau GmbH",
        email="jm@example.com",
    )
    same_mail = await factory.lead(
        org, first_name="J.", last_name="Mueller", email="jm@example.com"
    )
    fuzzy = await factory.lead(
        org,
        first_name="Johannes",
        last_name="Müller",
        company="Müller Bau",
        email="other@example.com",
    )
    await factory.lead(org, first_name="Petra", last_name="Müller", company="Blumen Petra")
    r = await client.get(f"/api/v1/leads/{base.id}/duplicates", headers=admin.headers)
    assert r.status_code == 200
    found = {d["lead"]["id"]: d for d in r.json()}
    assert set(found) == {str(same_mail.id), str(fuzzy.id)}
    assert found[str(same_mail.id)]["score"] == 100
    assert "same email" in found[str(same_mail.id)]["reasons"]
    assert 85 <= found[str(fuzzy.id)]["score"] < 100


async def test_merge_combines_and_moves_history(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    keep = await factory.lead(
        org,
        first_name="Eva",
        last_name="Kurz",
        email=None,
        phone="+4930111111",
        tags=["a"],
        notes="first",
        custom={"x": "1"},
    )
    other = await factory.lead(
        org,
        first_name="Eva",
        last_name="Kurz",
        email="eva@example.com",
        company="Kurz KG",
        tags=["b", "a"],
        notes="second",
        custom={"x": "2", "y": "3"},
    )
    await client.post(
        f"/api/v1/leads/{other.id}/consents",
        headers=admin.headers,
        json={"channel": "email", "granted": True, "source": "form"},
    )
    r = await client.post(
        f"/api/v1/leads/{keep.id}/merge", headers=admin.headers, json={"other_ids": [str(other.id)]}
    )
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["email"] == "eva@example.com" and merged["phone"] == "+4930111111"
    assert merged["company"] == "Kurz KG"
    assert merged["tags"] == ["a", "b"]
    assert merged["notes"] == "first\n\n---\n\nsecond"
    assert merged["custom"] == {"x": "1", "y": "3"}
    assert merged["consents"]["email"]["granted"] is True
    moved = await session.scalar(
        select(func.count()).select_from(Consent).where(Consent.lead_id == keep.id)
    )
    assert moved == 1
    assert (await client.get(f"/api/v1/leads/{other.id}", headers=admin.headers)).status_code == 404
    audit = (
        await client.get(
            "/api/v1/admin/audit-logs", headers=admin.headers, params={"action": "lead.merge"}
        )
    ).json()
    assert audit["items"][0]["after"]["merged_ids"] == [str(other.id)]
    again = await client.post(
        f"/api/v1/leads/{keep.id}/merge", headers=admin.headers, json={"other_ids": [str(other.id)]}
    )
    assert again.status_code == 404
    assert (
        await client.post(
            f"/api/v1/leads/{keep.id}/merge", headers=admin.headers, json={"other_ids": []}
        )
    ).status_code == 422


async def test_bulk_actions(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    leads = [await factory.lead(org, source="messe" if i < 3 else "web") for i in range(5)]
    ids = [str(x.id) for x in leads]
    h = admin.headers

    async def bulk(body: dict[str, object]) -> httpx.Response:
        return await client.post("/api/v1/leads/bulk", headers=h, json=body)

    r = await bulk({"filter": {"source": "messe"}, "action": "assign", "value": str(rep.id)})
    assert r.json() == {"matched": 3, "updated": 3}
    r = await bulk({"ids": ids, "action": "status", "value": "contacted"})
    assert r.json() == {"matched": 5, "updated": 5}
    r = await bulk({"ids": ids[:2], "action": "tag_add", "value": "hot"})
    assert r.json() == {"matched": 2, "updated": 2}
    r = await bulk({"ids": ids, "action": "tag_remove", "value": "hot"})
    assert r.json() == {"matched": 5, "updated": 2}
    r = await bulk({"ids": ids[4:], "action": "delete"})
    assert r.json() == {"matched": 1, "updated": 1}
    listing = (await client.get("/api/v1/leads", headers=h, params={"status": "contacted"})).json()
    assert listing["total"] == 4
    bad_bodies: list[dict[str, object]] = [
        {"ids": ids, "action": "status", "value": "nope"},
        {"ids": ids, "action": "explode"},
        {"action": "delete"},
        {"ids": ids, "filter": {}, "action": "delete"},
        {"ids": ids, "action": "assign", "value": str(uuid.uuid4())},
    ]
    for bad in bad_bodies:
        assert (await bulk(bad)).status_code == 422, bad
    audit = (
        await client.get(
            "/api/v1/admin/audit-logs", headers=h, params={"action": "lead.bulk_status"}
        )
    ).json()
    assert audit["total"] == 5
    viewer = await factory.member(org, "viewer")
    rep_m = await factory.member(org, "counselor")
    assert (
        await client.post(
            "/api/v1/leads/bulk",
            headers=viewer.headers,
            json={"ids": ids, "action": "tag_add", "value": "x"},
        )
    ).status_code == 403
    assert (
        await client.post(
            "/api/v1/leads/bulk", headers=rep_m.headers, json={"ids": ids, "action": "delete"}
        )
    ).status_code == 403


async def test_bulk_filter_over_cap_is_refused(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    app.state.settings.bulk_max_leads = 2
    org = await factory.org()
    admin = await factory.member(org)
    for _ in range(3):
        await factory.lead(org)
    r = await client.post(
        "/api/v1/leads/bulk",
        headers=admin.headers,
        json={"filter": {}, "action": "tag_add", "value": "x"},
    )
    assert r.status_code == 413 and r.json()["code"] == "bulk_too_large"


async def test_csv_export_header_filters_and_formula_safety(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await client.post(
        "/api/v1/custom-fields",
        headers=admin.headers,
        json={"key": "branche", "label": "Branche", "type": "text"},
    )
    await factory.lead(
        org,
        first_name='=HYPERLINK("http://evil")',
        last_name="@SUM(A1)",
        phone="+4930123456",
        tags=["a", "b"],
        source="web",
        custom={"branche": "-2+3"},
    )
    await factory.lead(org, first_name="Other", source="messe")
    r = await client.post("/api/v1/leads/export", headers=admin.headers, json={"source": "web"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert ",".join(rows[0]) == EXPECTED_HEADER + ",branche"
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["first_name"] == '\'=HYPERLINK("http://evil")'
    assert row["last_name"] == "'@SUM(A1)"
    assert row["phone"] == "'+4930123456"
    assert row["tags"] == "a;b"
    assert row["branche"] == "'-2+3"
    everything = await client.post("/api/v1/leads/export", headers=admin.headers)
    assert len(list(csv.reader(io.StringIO(everything.text)))) == 3
    bad = await client.post("/api/v1/leads/export", headers=admin.headers, json={"colour": 1})
    assert bad.status_code == 422
    audit = (
        await client.get(
            "/api/v1/admin/audit-logs", headers=admin.headers, params={"action": "lead.export"}
        )
    ).json()
    assert audit["total"] == 2


async def test_xlsx_export(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await factory.lead(org, first_name="=1+1", last_name="Plain")
    r = await client.post("/api/v1/leads/export?format=xlsx", headers=admin.headers, json={})
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content), read_only=True).active
    assert sheet is not None
    rows = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    assert ",".join(rows[0]) == EXPECTED_HEADER
    assert rows[1][3] == "'=1+1" and rows[1][4] == "Plain"
