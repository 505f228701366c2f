"""The lead list, a lead's page, the pipeline board and the dashboard: the services, the
permissions and the row scope the API has."""

from __future__ import annotations

import csv
import io
import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.audit_log import AuditLog
from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadStatusChange
from tests.accounts.helpers import custom_role
from tests.fixtures.factories import Factory
from tests.web.helpers import HTMX, browser


async def _fresh(session: AsyncSession, lead_id: uuid.UUID) -> Lead:
    lead = await session.scalar(
        select(Lead).where(Lead.id == lead_id).execution_options(populate_existing=True)
    )
    assert lead is not None
    return lead


async def test_the_list_searches_filters_and_pages_by_keyset(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    await factory.lead(org, first_name="Zelda", last_name="Unique", source="messe")
    for _ in range(26):
        await factory.lead(org, source="web")
    page = await me.get(client, "/crm/leads")
    assert page.status_code == 200 and "27 leads" in page.text
    assert 'rel="next"' in page.text and "cursor=" in page.text

    typed = await me.get(client, "/crm/leads?q=zelda", headers=HTMX)
    assert "<html" not in typed.text  # the results fragment only
    assert "Zelda Unique" in typed.text and "1 leads" in typed.text
    by_source = await me.get(client, "/crm/leads?source=web&sort=name", headers=HTMX)
    assert "26 leads" in by_source.text and "Zelda" not in by_source.text
    following = by_source.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = await me.get(client, following.replace("&amp;", "&"), headers=HTMX)
    assert second.status_code == 200 and second.text.count('name="ids"') == 1
    bad = await me.get(client, "/crm/leads?q=" + "x" * 300, headers=HTMX)
    assert bad.status_code == 422


async def test_the_list_keeps_to_the_row_scope(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    counselor = await browser(factory, org, "counselor")
    await factory.lead(org, first_name="Mine", assignee_id=counselor.user.id)
    await factory.lead(org, first_name="Theirs")
    page = await counselor.get(client, "/crm/leads")
    assert "Mine" in page.text and "Theirs" not in page.text
    # A counselor may not delete or assign: no such bulk actions offered.
    assert 'value="delete"' not in page.text and 'value="assign"' not in page.text


async def test_bulk_status_goes_through_the_bulk_service(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    leads = [await factory.lead(org) for _ in range(3)]
    form = {"action": "status", "value": "contacted", "ids": [str(x.id) for x in leads[:2]]}
    r = await me.post(client, "/crm/leads/bulk", form, headers=HTMX)
    assert r.status_code == 200 and "2 of 2 leads updated" in r.text
    assert [(await _fresh(session, x.id)).status for x in leads] == [
        "contacted",
        "contacted",
        "new",
    ]
    history = await session.scalars(
        select(LeadStatusChange.to_status).where(LeadStatusChange.lead_id == leads[0].id)
    )
    assert "contacted" in list(history)
    nothing = await me.post(
        client, "/crm/leads/bulk", {"action": "status", "value": "won"}, headers=HTMX
    )
    assert nothing.status_code == 422 and "Select at least one lead" in nothing.text
    unknown = await me.post(
        client, "/crm/leads/bulk", {**form, "value": "no-such-stage"}, headers=HTMX
    )
    assert unknown.status_code == 422
    # Without the token nothing happens.
    forged = await me.post(client, "/crm/leads/bulk", {**form, "value": "won"}, csrf=False)
    assert forged.status_code == 403
    assert (await _fresh(session, leads[0].id)).status == "contacted"


async def test_bulk_delete_needs_the_delete_permission(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    counselor = await browser(factory, org, "counselor")
    lead = await factory.lead(org, assignee_id=counselor.user.id)
    r = await counselor.post(client, "/crm/leads/bulk", {"action": "delete", "ids": [str(lead.id)]})
    assert r.status_code == 403 and "Permission denied" in r.text
    assert (await _fresh(session, lead.id)).deleted_at is None


async def test_export_downloads_the_current_view(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    await factory.lead(org, first_name="Exported", source="messe")
    await factory.lead(org, first_name="Filtered", source="web")
    r = await me.post(client, "/crm/leads/export", {"source": "messe", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert [row["first_name"] for row in rows] == ["Exported"]
    audit = await session.scalar(
        select(AuditLog).where(AuditLog.organization_id == org.id, AuditLog.action == "lead.export")
    )
    assert audit is not None
    counselor = await browser(factory, org, "counselor")
    assert (await counselor.post(client, "/crm/leads/export", {})).status_code == 403


async def test_a_lead_page_shows_and_saves_with_the_apis_messages(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    lead = await factory.lead(org, first_name="Ada", last_name="Lovelace", tags=["vip"])
    page = await me.get(client, f"/crm/leads/{lead.id}")
    assert page.status_code == 200 and "Ada Lovelace" in page.text and 'value="vip"' in page.text
    fields = {"first_name": "Ada", "last_name": "Byron", "email": "not-an-email", "tags": "a, b"}
    bad = await me.post(client, f"/crm/leads/{lead.id}", fields, headers=HTMX)
    assert bad.status_code == 422
    assert 'aria-invalid="true" aria-describedby="err-email"' in bad.text
    assert (await _fresh(session, lead.id)).last_name == "Lovelace"
    ok = await me.post(
        client, f"/crm/leads/{lead.id}", {**fields, "email": "ada@example.com"}, headers=HTMX
    )
    assert ok.status_code == 200 and "Saved" in ok.text
    saved = await _fresh(session, lead.id)
    assert (saved.last_name, saved.email, saved.tags) == ("Byron", "ada@example.com", ["a", "b"])
    stale = await me.post(
        client, f"/crm/leads/{lead.id}", {**fields, "email": "x@example.com", "version": "1"}
    )
    assert stale.status_code == 422 and (await _fresh(session, lead.id)).email == "ada@example.com"


async def test_stage_and_assignee_change_on_the_lead_page(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    colleague = await factory.user(org, "counselor")
    lead = await factory.lead(org)
    r = await me.post(client, f"/crm/leads/{lead.id}/status", {"status": "qualified"}, headers=HTMX)
    assert r.status_code == 200 and 'id="lead-side"' in r.text
    assert (await _fresh(session, lead.id)).status == "qualified"
    r = await me.post(client, f"/crm/leads/{lead.id}/status", {"status": "nope"}, headers=HTMX)
    assert r.status_code == 422
    r = await me.post(
        client, f"/crm/leads/{lead.id}/assign", {"assignee_id": str(colleague.id)}, headers=HTMX
    )
    assert r.status_code == 200 and colleague.full_name in r.text
    assert (await _fresh(session, lead.id)).assignee_id == colleague.id
    plain = await me.post(client, f"/crm/leads/{lead.id}/status", {"status": "won"})
    assert (plain.status_code, plain.headers["location"]) == (303, f"/crm/leads/{lead.id}")


async def test_another_organisations_lead_is_not_found_and_a_viewer_cannot_write(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    theirs = await factory.lead(other)
    me = await browser(factory, org)
    assert (await me.get(client, f"/crm/leads/{theirs.id}")).status_code == 404
    r = await me.post(client, f"/crm/leads/{theirs.id}/status", {"status": "won"})
    assert r.status_code == 404
    assert (await _fresh(session, theirs.id)).status == "new"

    viewer = await browser(factory, org, "viewer")
    mine = await factory.lead(org)
    page = await viewer.get(client, f"/crm/leads/{mine.id}")
    assert page.status_code == 200 and 'id="stage-select"' not in page.text
    for url, form in (
        (f"/crm/leads/{mine.id}/status", {"status": "won"}),
        (f"/crm/leads/{mine.id}", {"first_name": "Changed"}),
        (f"/crm/leads/{mine.id}/delete", {}),
    ):
        r = await viewer.post(client, url, form)
        assert r.status_code == 403, url
    assert (await _fresh(session, mine.id)).status == "new"
    # CSRF before anything else: a forged form of an admin changes nothing either.
    r = await me.post(client, f"/crm/leads/{mine.id}/delete", {}, csrf=False)
    assert r.status_code == 403 and (await _fresh(session, mine.id)).deleted_at is None
    r = await me.post(client, f"/crm/leads/{mine.id}/delete", {})
    assert r.status_code == 303 and (await _fresh(session, mine.id)).deleted_at is not None


async def test_the_pipeline_board_counts_pages_and_moves(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    for i in range(21):
        # Σ value of the column: 1,000 × 20 + a text that is not a number (counts 0).
        value: object = 1000 if i else "a lot"
        await factory.lead(org, status="contacted", custom={"value": value})
    lead = await factory.lead(org, first_name="Mover")
    board = await me.get(client, "/crm/pipeline")
    assert board.status_code == 200
    assert 'data-stage="contacted"' in board.text and 'data-count="21"' in board.text
    assert 'data-value="20000.0">20,000<' in board.text
    assert "/crm/pipeline/contacted?cursor=" in board.text
    more = board.text.split("/crm/pipeline/contacted?cursor=")[1].split('"')[0]
    rest = await me.get(client, f"/crm/pipeline/contacted?cursor={more}", headers=HTMX)
    assert rest.status_code == 200 and rest.text.count('class="card"') == 1
    assert (await me.get(client, "/crm/pipeline/nope", headers=HTMX)).status_code == 404
    moved = await me.post(
        client, f"/crm/leads/{lead.id}/status", {"status": "won", "from": "board"}, headers=HTMX
    )
    assert moved.status_code == 204 and (await _fresh(session, lead.id)).status == "won"
    refused = await me.post(
        client, f"/crm/leads/{lead.id}/status", {"status": "nope", "from": "board"}, headers=HTMX
    )
    assert refused.status_code == 422 and refused.headers["hx-retarget"] == "#flash"


async def test_the_dashboard_follows_the_analytics_permission(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org("Dash GmbH")
    me = await browser(factory, org)
    await factory.lead(org, needs_action=True, first_name="Urgent")
    page = await me.get(client, "/")
    assert page.status_code == 200
    assert 'data-testid="kpi-total">1<' in page.text and "volume-chart" in page.text
    assert "Urgent" in page.text  # the needs-action list
    await custom_role(factory.session, org, "reader", ["leads:read"])
    reader = await browser(factory, org, "reader")
    page = await reader.get(client, "/")
    assert page.status_code == 200 and "Your role has no analytics." in page.text
    assert "volume-chart" not in page.text
