"""The lead page's panels: tasks, duplicates and merge, the AI panel and call requests, through
the tasks, leads, ai and calls services with the API's permissions and scope."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.call_request import CallRequest
from leadflow.models.lead import Lead
from leadflow.models.task import Task
from tests.accounts.helpers import custom_role
from tests.fixtures.factories import Factory
from tests.web.helpers import HTMX, browser


async def _lead(session: AsyncSession, lead_id: uuid.UUID) -> Lead:
    lead = await session.scalar(
        select(Lead).where(Lead.id == lead_id).execution_options(populate_existing=True)
    )
    assert lead is not None
    return lead


async def test_tasks_are_listed_added_and_completed(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    me = await browser(factory, org)
    lead = await factory.lead(org)
    page = await me.get(client, f"/crm/leads/{lead.id}")
    assert f'hx-get="/crm/leads/{lead.id}/tasks"' in page.text
    empty = await me.get(client, f"/crm/leads/{lead.id}/tasks", headers=HTMX)
    assert "No tasks." in empty.text
    url = f"/crm/leads/{lead.id}/tasks"
    bad = await me.post(client, url, {"title": ""}, headers=HTMX)
    assert bad.status_code == 422 and 'aria-describedby="err-task-title"' in bad.text
    added = await me.post(
        client, url, {"title": "Send the offer", "due_at": "2030-01-02T09:30"}, headers=HTMX
    )
    assert added.status_code == 200 and "Send the offer" in added.text
    task = await session.scalar(select(Task).where(Task.lead_id == lead.id))
    assert task is not None and task.status == "open" and task.due_at is not None
    assert task.due_at.year == 2030
    done = await me.post(client, f"{url}/{task.id}/complete", headers=HTMX)
    assert done.status_code == 200 and 'data-status="done"' in done.text
    assert (await me.post(client, url, {"title": "x"}, csrf=False)).status_code == 403
    theirs = await factory.lead(other)
    assert (await me.get(client, f"/crm/leads/{theirs.id}/tasks")).status_code == 404
    assert (
        await me.post(client, f"/crm/leads/{theirs.id}/tasks", {"title": "x"})
    ).status_code == 404
    viewer = await browser(factory, org, "viewer")
    assert (await viewer.post(client, url, {"title": "x"})).status_code == 403


async def test_duplicates_merge_through_the_leads_service(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    keep = await factory.lead(org, email="ada@example.com", tags=["a"], company=None)
    twin = await factory.lead(
        org, email="ada@example.com", tags=["b"], company="Engines", phone="+4915112345678"
    )
    panel = await me.get(client, f"/crm/leads/{keep.id}/duplicates", headers=HTMX)
    assert "same email" in panel.text and 'id="merge-dialog"' in panel.text
    none = await me.post(client, f"/crm/leads/{keep.id}/merge", {}, headers=HTMX)
    assert "Choose at least one lead to merge" in none.text
    counselor = await browser(factory, org, "counselor")
    refused = await counselor.post(
        client, f"/crm/leads/{keep.id}/merge", {"other_ids": [str(twin.id)]}
    )
    assert refused.status_code in (403, 404)
    merged = await me.post(
        client, f"/crm/leads/{keep.id}/merge", {"other_ids": [str(twin.id)]}, headers=HTMX
    )
    assert merged.status_code == 204 and merged.headers["hx-redirect"] == f"/crm/leads/{keep.id}"
    survivor, gone = await _lead(session, keep.id), await _lead(session, twin.id)
    assert survivor.company == "Engines" and sorted(survivor.tags) == ["a", "b"]
    assert gone.deleted_at is not None and gone.merged_into_id == keep.id


async def test_the_ai_panel_drafts_with_warnings_and_applies_an_analysis(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    me = await browser(factory, org)
    lead = await factory.lead(
        org, first_name="Ada", notes="Sehr interessiert, will ein Angebot bis Freitag"
    )
    page = await me.get(client, f"/crm/leads/{lead.id}")
    assert 'id="ai-panel"' in page.text
    url = f"/crm/leads/{lead.id}/ai"
    draft = await me.post(
        client, f"{url}/draft", {"channel": "whatsapp", "language": "de"}, headers=HTMX
    )
    assert draft.status_code == 200, draft.text
    assert 'data-testid="ai-draft"' in draft.text and "Ada" in draft.text
    # No WhatsApp consent on record: the AI service warns, the panel shows it.
    assert 'class="ai-warning"' in draft.text
    bad = await me.post(client, f"{url}/draft", {"channel": "fax"}, headers=HTMX)
    assert bad.status_code == 422 and 'data-testid="ai-error"' in bad.text
    analysis = await me.post(client, f"{url}/analyze", {}, headers=HTMX)
    assert analysis.status_code == 200 and 'id="ai-apply"' in analysis.text
    applied = await me.post(client, f"{url}/analyze", {"apply": "true"}, headers=HTMX)
    assert 'data-testid="ai-applied"' in applied.text
    stage = applied.text.split('data-testid="ai-stage">')[1].split("<")[0]
    assert (await _lead(session, lead.id)).status == stage
    theirs = await factory.lead(other)
    assert (await me.post(client, f"/crm/leads/{theirs.id}/ai/analyze", {})).status_code == 404
    await custom_role(factory.session, org, "no-ai", ["leads:read"])
    reader = await browser(factory, org, "no-ai")
    assert 'id="ai-panel"' not in (await reader.get(client, f"/crm/leads/{lead.id}")).text
    assert (await reader.post(client, f"{url}/draft", {})).status_code == 403


async def test_a_call_request_shows_its_live_status(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    me = await browser(factory, org)
    lead = await factory.lead(org, phone="+4930123456")
    url = f"/crm/leads/{lead.id}/calls"
    empty = await me.get(client, url, headers=HTMX)
    assert "No calls yet." in empty.text and 'data-live="false"' in empty.text
    asked = await me.post(client, url, {}, headers=HTMX)
    assert asked.status_code == 200, asked.text
    row = await session.scalar(select(CallRequest).where(CallRequest.lead_id == lead.id))
    assert row is not None and row.number_to_call == "+4930123456"
    # Not finished: the panel polls itself.
    assert 'data-live="true"' in asked.text and 'hx-trigger="every 2s"' in asked.text
    canceled = await me.post(client, f"{url}/{row.id}/cancel", headers=HTMX)
    assert 'data-status="canceled"' in canceled.text and 'data-live="false"' in canceled.text
    bad = await me.post(client, url, {"number": "not a number"}, headers=HTMX)
    assert bad.status_code == 422
    theirs = await factory.lead(other, phone="+4930999999")
    assert (await me.post(client, f"/crm/leads/{theirs.id}/calls", {})).status_code == 404
    viewer = await browser(factory, org, "viewer")
    assert (await viewer.post(client, url, {})).status_code == 403
