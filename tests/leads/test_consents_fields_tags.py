"""Consent ledger, custom fields, tags."""

from __future__ import annotations

import httpx

from tests.fixtures.factories import Factory


async def test_consent_ledger_latest_per_channel(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    lead = (
        await client.post("/api/v1/leads", headers=rep.headers, json={"first_name": "Ida"})
    ).json()
    url = f"/api/v1/leads/{lead['id']}/consents"
    for body in (
        {"channel": "email", "granted": True, "source": "web form", "text": "Ja"},
        {"channel": "whatsapp", "granted": True, "source": "chat"},
        {"channel": "email", "granted": False, "source": "unsubscribe link"},
    ):
        r = await client.post(url, headers=rep.headers, json=body)
        assert r.status_code == 201, r.text
    history = (await client.get(url, headers=rep.headers)).json()
    assert [(h["channel"], h["granted"]) for h in history] == [
        ("email", False),
        ("whatsapp", True),
        ("email", True),
    ]
    detail = (await client.get(f"/api/v1/leads/{lead['id']}", headers=rep.headers)).json()
    assert detail["consents"]["email"]["granted"] is False
    assert detail["consents"]["whatsapp"]["granted"] is True
    assert "sms" not in detail["consents"]
    for bad in (
        {"channel": "pigeon", "granted": True, "source": "x"},
        {"channel": "email", "granted": True},
    ):
        assert (await client.post(url, headers=rep.headers, json=bad)).status_code == 422
    assert len((await client.get(url, headers=rep.headers)).json()) == 3


async def test_custom_fields_validate_lead_values(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor")
    defs: list[dict[str, object]] = [
        {
            "key": "branche",
            "label": "Branche",
            "type": "select",
            "options": ["IT", "Bau"],
            "required": True,
        },
        {"key": "mitarbeiter", "label": "Mitarbeiter", "type": "number"},
        {"key": "gruendung", "label": "Gründung", "type": "date"},
        {"key": "newsletter", "label": "Newsletter", "type": "boolean"},
        {"key": "produkte", "label": "Produkte", "type": "multiselect", "options": ["A", "B"]},
        {"key": "plz", "label": "PLZ", "type": "text"},
    ]
    for d in defs:
        r = await client.post("/api/v1/custom-fields", headers=admin.headers, json=d)
        assert r.status_code == 201, r.text
    assert (
        await client.post(
            "/api/v1/custom-fields",
            headers=rep.headers,
            json={"key": "x", "label": "x", "type": "text"},
        )
    ).status_code == 403
    assert (
        await client.post(
            "/api/v1/custom-fields",
            headers=admin.headers,
            json={"key": "bad", "label": "x", "type": "select"},
        )
    ).status_code == 422
    ok = await client.post(
        "/api/v1/leads",
        headers=rep.headers,
        json={
            "first_name": "Jo",
            "custom": {
                "branche": "IT",
                "mitarbeiter": "250",
                "gruendung": "2001-05-01",
                "newsletter": "ja",
                "produkte": ["A", "B"],
                "plz": 20095,
            },
        },
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["custom"] == {
        "branche": "IT",
        "mitarbeiter": 250,
        "gruendung": "2001-05-01",
        "newsletter": True,
        "produkte": ["A", "B"],
        "plz": "20095",
    }
    missing = await client.post(
        "/api/v1/leads", headers=rep.headers, json={"first_name": "Kai", "custom": {}}
    )
    assert missing.status_code == 422
    assert ["body", "custom", "branche"] in [e["loc"] for e in missing.json()["errors"]]
    bad = await client.post(
        "/api/v1/leads",
        headers=rep.headers,
        json={
            "first_name": "Kai",
            "custom": {"branche": "Chemie", "mitarbeiter": "viele", "gruendung": "01.05.2001"},
        },
    )
    locs = [e["loc"][-1] for e in bad.json()["errors"]]
    assert bad.status_code == 422 and set(locs) == {"branche", "mitarbeiter", "gruendung"}
    listed: list[dict[str, object]] = (
        await client.get("/api/v1/custom-fields", headers=rep.headers)
    ).json()
    assert [item["key"] for item in listed] == [spec["key"] for spec in defs]


async def test_a_number_field_refuses_what_is_no_json_number(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """ "1e999", "nan" and "-inf" parse as floats but are no JSON number: refused as the
    field's error on both engines (SQLite stored them, PostgreSQL's jsonb refused the write);
    so is an integer too large for a float."""
    org = await factory.org()
    admin = await factory.member(org)
    field = {"key": "budget", "label": "Budget", "type": "number"}
    assert (
        await client.post("/api/v1/custom-fields", headers=admin.headers, json=field)
    ).status_code == 201
    # 10**400: an integer no float holds (a 500 before: float() overflowed).
    for value in ("1e999", "nan", "-inf", "NaN", 10**400):
        r = await client.post(
            "/api/v1/leads",
            headers=admin.headers,
            json={"first_name": "Jo", "custom": {"budget": value}},
        )
        assert r.status_code == 422, (value, r.text)
        assert r.json()["errors"][0]["loc"] == ["body", "custom", "budget"], r.text
        assert "finite" in r.json()["errors"][0]["msg"]
    listed = await client.get("/api/v1/leads", headers=admin.headers)
    assert listed.json()["total"] == 0
    big = await client.post(
        "/api/v1/leads",
        headers=admin.headers,
        json={"first_name": "Jo", "custom": {"budget": "1e308"}},
    )
    assert big.status_code == 201 and big.json()["custom"]["budget"] == int(1e308)


async def test_tags_with_counts(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await factory.lead(org, tags=["vip", "messe"])
    await factory.lead(org, tags=["vip"])
    await factory.lead(org, tags=[])
    await factory.lead(await factory.org(), tags=["vip", "fremd"])
    r = await client.get("/api/v1/tags", headers=admin.headers)
    assert r.json() == [{"tag": "vip", "count": 2}, {"tag": "messe", "count": 1}]
