"""The lead list's tag and custom field filters, the timeline's kind filter and the saved
views of the list."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.custom_field import CustomFieldDefinition
from tests.fixtures.factories import Factory
from tests.web.helpers import HTMX, browser


async def test_the_list_filters_by_tag_and_custom_field(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    session.add(
        CustomFieldDefinition(organization_id=org.id, key="course", label="Course", type="text")
    )
    await session.commit()
    await factory.lead(org, first_name="Tagged", tags=["vip"], custom={"course": "math"})
    await factory.lead(org, first_name="Other", tags=["cold"], custom={"course": "art"})
    await factory.lead(org, first_name="Plain")

    page = await me.get(client, "/crm/leads")
    assert 'name="tag"' in page.text and 'name="cf.course"' in page.text

    by_tag = await me.get(client, "/crm/leads?tag=vip", headers=HTMX)
    assert "1 leads" in by_tag.text and "Tagged" in by_tag.text and "Other" not in by_tag.text
    by_field = await me.get(client, "/crm/leads?cf.course=art", headers=HTMX)
    assert "1 leads" in by_field.text and "Other" in by_field.text
    # The custom filter travels with the view (bulk and export forms keep it).
    assert 'name="cf.course" value="art"' in by_field.text
    none = await me.get(client, "/crm/leads?tag=vip&cf.course=art", headers=HTMX)
    assert "0 leads" in none.text


async def test_the_timeline_shows_only_the_chosen_kinds(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    lead = await factory.lead(org)
    moved = await me.post(client, f"/crm/leads/{lead.id}/status", {"status": "contacted"})
    assigned = await me.post(client, f"/crm/leads/{lead.id}/assign", {"assignee_id": me.user.id})
    assert moved.status_code == 303 and assigned.status_code == 303

    page = await me.get(client, f"/crm/leads/{lead.id}")
    assert 'name="kind" value="assignment"' in page.text
    assert 'data-kind="status_change"' in page.text and 'data-kind="assignment"' in page.text

    url = f"/crm/leads/{lead.id}/timeline"
    only = await me.get(client, f"{url}?kind=assignment", headers=HTMX)
    assert only.status_code == 200
    assert 'data-kind="assignment"' in only.text and 'data-kind="status_change"' not in only.text
    both = await me.get(client, f"{url}?kind=assignment&kind=status_change", headers=HTMX)
    assert 'data-kind="status_change"' in both.text
    unknown = await me.get(client, f"{url}?kind=nonsense", headers=HTMX)
    assert unknown.status_code == 422
