"""An export imports back: every exported column (fixed and custom) is recognised as an import
header and every exported value survives export → import into a fresh organisation, for CSV
and XLSX."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadflow.imports import parsing
from leadflow.leads.export import EXPORT_COLUMNS
from leadflow.leads.schemas import LeadCreate
from tests.fixtures.factories import Factory

CUSTOM_FIELDS: list[dict[str, Any]] = [
    {"key": "branche", "label": "Branche", "type": "text"},
    {"key": "umsatz", "label": "Umsatz", "type": "number"},
    {"key": "gegruendet", "label": "Gegründet", "type": "date"},
    {"key": "newsletter", "label": "Newsletter", "type": "boolean"},
    {"key": "groesse", "label": "Größe", "type": "select", "options": ["klein", "gross"]},
    {"key": "produkte", "label": "Produkte", "type": "multiselect", "options": ["a", "b", "c"]},
]

# field -> the value the lead is created with (via the API). Values that look like formulas
# (`+`, `-`, `=`, `@`) are quoted by the export and must come back unquoted.
FIELDS: dict[str, Any] = {
    "first_name": "=Ida",
    "last_name": "Müller-Lüdenscheidt",
    "email": "ida.mueller@example.com",
    "phone": "+49 30 12345678",
    "tags": ["vip", "messe 2026"],
    "source": "web",
    "utm_source": "newsletter",
    "utm_medium": "email",
    "utm_campaign": "-winter",
    "status": "qualified",
    "last_contacted_at": "2026-01-15T09:30:00Z",
    "custom.branche": "+IT; Beratung",
    "custom.umsatz": -1250.5,
    "custom.gegruendet": "1999-12-31",
    "custom.newsletter": True,
    "custom.groesse": "gross",
    "custom.produkte": ["a", "c"],
}
# Not carried over, by design: a lead imported elsewhere is a new lead with its own id and
# creation time (the ids of the source organisation may still exist in the same database).
SYSTEM_COLUMNS = frozenset({"id", "created_at"})


def _body() -> dict[str, Any]:
    out: dict[str, Any] = {"custom": {}}
    for name, value in FIELDS.items():
        if name.startswith("custom."):
            out["custom"][name[7:]] = value
        else:
            out[name] = value
    return out


def _view(lead: dict[str, Any]) -> dict[str, Any]:
    """The compared fields of a lead as the API returns it."""
    out: dict[str, Any] = {}
    for name in FIELDS:
        if name.startswith("custom."):
            out[name] = lead["custom"].get(name[7:])
        else:
            out[name] = lead[name]
    return out


async def _setup_fields(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for spec in CUSTOM_FIELDS:
        r = await client.post("/api/v1/custom-fields", headers=headers, json=spec)
        assert r.status_code == 201, r.text


def test_every_exported_column_and_api_field_is_an_import_header() -> None:
    custom = {parsing.header_key(f["key"]): f["key"] for f in CUSTOM_FIELDS}
    headers = [*EXPORT_COLUMNS, *(f["key"] for f in CUSTOM_FIELDS)]
    plan = parsing.plan_columns(headers, custom, None)
    found = dict(zip(headers, plan.targets, strict=True))
    expected: dict[str, str | None] = {c: c for c in EXPORT_COLUMNS if c not in SYSTEM_COLUMNS}
    expected |= {c: None for c in SYSTEM_COLUMNS}
    expected |= {f["key"]: f"custom.{f['key']}" for f in CUSTOM_FIELDS}
    assert found == expected
    # Every importable field of the API under its own name (plus `name`, split on import).
    importable = set(parsing.SYNONYMS)
    assert importable <= set(LeadCreate.model_fields)
    api_names = sorted(importable)
    plan = parsing.plan_columns(api_names, {}, None)
    assert dict(zip(api_names, plan.targets, strict=True)) == {n: n for n in api_names}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_export_reimports_into_an_empty_organisation_field_by_field(
    client: httpx.AsyncClient, factory: Factory, fmt: str
) -> None:
    source = await factory.member(await factory.org())
    await _setup_fields(client, source.headers)
    r = await client.post("/api/v1/leads", headers=source.headers, json=_body())
    assert r.status_code == 201, r.text
    original = r.json()
    exported = await client.post(
        "/api/v1/leads/export", headers=source.headers, params={"format": fmt}, json={}
    )
    assert exported.status_code == 200, exported.text

    target = await factory.member(await factory.org())
    await _setup_fields(client, target.headers)
    ctype = (
        "text/csv"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    r = await client.post(
        "/api/v1/leads/import",
        headers=target.headers,
        files={"file": (f"export.{fmt}", exported.content, ctype)},
        data={"analyze": "false"},
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["imported_count"], result["errors"]) == (1, []), result
    listed = (await client.get("/api/v1/leads", headers=target.headers)).json()["items"]
    assert len(listed) == 1
    copy = (await client.get(f"/api/v1/leads/{listed[0]['id']}", headers=target.headers)).json()
    # Field by field: a mismatch names every field that did not survive.
    before, after = _view(original), _view(copy)
    assert {k: after[k] for k in FIELDS} == {k: before[k] for k in FIELDS}
    assert before["last_contacted_at"] is not None and before["custom.umsatz"] == -1250.5
