"""The lead list's tag and custom field filters, the timeline's kind filter and the saved
views of the list (their owner's alone)."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.leads.saved_views import MAX_PER_USER
from leadflow.models.custom_field import CustomFieldDefinition
from leadflow.models.lead import Lead
from leadflow.models.saved_view import SavedView
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


async def test_a_saved_view_reopens_the_lists_filters(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    await factory.lead(org, first_name="Webby", source="web", tags=["vip"])
    await factory.lead(org, first_name="Fair", source="messe")
    form = {"name": "VIP web", "source": "web", "tag": "vip", "sort": "name", "cursor": "x"}
    saved = await me.post(client, "/crm/views", form, headers=HTMX)
    assert saved.status_code == 200 and "VIP web" in saved.text
    view = await session.scalar(select(SavedView).where(SavedView.user_id == me.user.id))
    assert view is not None and view.organization_id == org.id
    assert view.query == "tag=vip&source=web&sort=name"  # no page position

    page = await me.get(client, "/crm/leads")
    assert f'href="/crm/views/{view.id}"' in page.text
    opened = await me.get(client, f"/crm/views/{view.id}")
    assert opened.status_code == 303 and opened.headers["location"] == f"/crm/leads?{view.query}"
    listed = await me.get(client, opened.headers["location"], headers=HTMX)
    assert "1 leads" in listed.text and "Webby" in listed.text

    again = await me.post(client, "/crm/views", {"name": " VIP web "}, headers=HTMX)
    assert again.status_code == 422 and "already have a view" in again.text
    bad = await me.post(client, "/crm/views", {"name": "bad", "q": "x" * 300}, headers=HTMX)
    assert bad.status_code == 422
    # A stored query the list's filter refuses is refused on use too.
    view.query = "assigned_to=nobody"
    await session.commit()
    assert (await me.get(client, f"/crm/views/{view.id}")).status_code == 422


async def test_saved_views_are_their_owners_alone(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    colleague = await browser(factory, org)
    stranger = await browser(factory, await factory.org())
    r = await me.post(client, "/crm/views", {"name": "Mine", "status": "new"}, headers=HTMX)
    assert r.status_code == 200
    view = await session.scalar(select(SavedView).where(SavedView.user_id == me.user.id))
    assert view is not None

    for other in (colleague, stranger):
        assert "Mine" not in (await other.get(client, "/crm/leads")).text
        assert (await other.get(client, f"/crm/views/{view.id}")).status_code == 404
        gone = await other.post(client, f"/crm/views/{view.id}/delete", headers=HTMX)
        assert gone.status_code == 404
    no_csrf = await me.post(client, f"/crm/views/{view.id}/delete", csrf=False, headers=HTMX)
    assert no_csrf.status_code == 403
    assert (await me.post(client, "/crm/views", {"name": "x"}, csrf=False)).status_code == 403

    deleted = await me.post(client, f"/crm/views/{view.id}/delete", headers=HTMX)
    assert deleted.status_code == 200 and "Mine" not in deleted.text
    assert await session.scalar(select(SavedView).where(SavedView.id == view.id)) is None


async def test_a_user_keeps_at_most_fifty_views(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    session.add_all(
        SavedView(organization_id=org.id, user_id=me.user.id, name=f"v{i}", query="")
        for i in range(MAX_PER_USER)
    )
    await session.commit()
    r = await me.post(client, "/crm/views", {"name": "one more"}, headers=HTMX)
    assert r.status_code == 422 and "At most 50" in r.text


async def test_a_nul_in_a_form_field_is_refused_alike_on_both_engines(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    """A browser sends U+0000 as %00: a 422 page, nothing saved (SQLite stored it)."""
    org = await factory.org()
    me = await browser(factory, org)
    r = await me.post(client, "/crm/views", {"name": "Mine\x00"})
    assert r.status_code == 422
    assert "text/html" in r.headers["content-type"]
    # A client that is no browser may send the byte itself.
    raw = await client.post(
        "/crm/views",
        content=urlencode({"csrf_token": me.csrf}).encode() + b"&name=Mine\x00",
        headers=me.headers({"Content-Type": "application/x-www-form-urlencoded"}),
    )
    assert raw.status_code == 422
    # Nor as a multipart form (the lead form's fields went to the database: 500 on PostgreSQL).
    lead = await factory.lead(org)
    for url, field in ((f"/crm/leads/{lead.id}", "first_name"), ("/crm/views", "name")):
        multipart = await client.post(
            url,
            data={"csrf_token": me.csrf, field: "Mine\x00"},
            files={"note": ("note.txt", b"a file part is the handler's", "text/plain")},
            headers=me.cookie,
        )
        assert multipart.status_code == 422, multipart.text
        assert "NUL character" in multipart.text
    kept = await session.get(Lead, lead.id, populate_existing=True)
    assert kept is not None and "\x00" not in (kept.first_name or "")
    assert await session.scalar(select(SavedView).where(SavedView.user_id == me.user.id)) is None
    # A "%" typed in a field is "%25" on the wire: plain text, saved.
    r = await me.post(client, "/crm/views", {"name": "100%00 sure"}, headers=HTMX)
    assert r.status_code == 200, r.text
    saved = await session.scalar(select(SavedView.name).where(SavedView.user_id == me.user.id))
    assert saved == "100%00 sure"
