"""More of the web app in a real browser: saved views, the lead page's panels, report
schedules, the import undo and the invitation link, each page checked like test_browser's.

The served app, the seeded organisation and the page come from test_browser's fixture (one
server for this module); the first test signs in.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from playwright.sync_api import Request
from sqlalchemy import select

from leadflow.accounts.invitations import invitation_token
from leadflow.db.engine import Database
from leadflow.models.invitation import Invitation
from leadflow.models.user import User
from tests.web.test_browser import EMAIL, PASSWORD, Site, site

__all__ = ["site"]  # the module's fixture, imported

# tests/fixtures/server.py starts every served app with this key (it signs invitation links).
SERVED_SECRET = "served-secret-" + "x" * 32


def _api_headers(site: Site) -> dict[str, str]:
    r = httpx.post(
        f"{site.base}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}, timeout=30
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_sign_in(site: Site) -> None:
    page = site.go("/login")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(site.base + "/")
    site.check()


def test_leaving_the_search_box_does_not_fetch_the_results_again(site: Site) -> None:
    page = site.go("/crm/leads")
    fetched: list[str] = []

    def seen(request: Request) -> None:
        if "/crm/leads?" in request.url:
            fetched.append(request.url)

    page.on("request", seen)
    page.fill("#q", "hopper")
    page.get_by_test_id("lead-count").filter(has_text="1 leads").wait_for()
    assert len(fetched) == 1, fetched
    # Leaving the box for the view's name: no second fetch swaps the name field away.
    page.fill("form.save-view input[name=name]", "Hopper only")
    page.click("form.save-view button[type=submit]")
    page.locator("#saved-views a", has_text="Hopper only").wait_for()
    assert len(fetched) == 1, fetched
    site.check()
    page.once("dialog", lambda d: d.accept())
    page.click("#saved-views button[aria-label='Delete Hopper only']")
    page.locator("#saved-views", has_text="No saved views yet.").wait_for()
    page.remove_listener("request", seen)


def test_a_saved_view_is_saved_opened_and_deleted(site: Site) -> None:
    page = site.go("/crm/leads")
    page.select_option("#f-status", "won")
    page.get_by_test_id("lead-count").filter(has_text="1 leads").wait_for()
    page.fill("form.save-view input[name=name]", "Won only")
    page.click("form.save-view button[type=submit]")
    link = page.locator("#saved-views a", has_text="Won only")
    link.wait_for()
    site.check()
    site.go("/crm/leads")
    assert page.get_by_test_id("lead-count").inner_text() == "8 leads"
    page.click("#saved-views a:has-text('Won only')")
    page.get_by_test_id("lead-count").filter(has_text="1 leads").wait_for()
    assert "status=won" in page.url
    assert page.locator("#f-status").input_value() == "won"
    site.check()
    page.once("dialog", lambda d: d.accept())
    page.click("#saved-views button[aria-label='Delete Won only']")
    page.locator("#saved-views", has_text="No saved views yet.").wait_for()
    page.reload()
    assert page.locator("#saved-views a").count() == 0
    site.check()


def test_lead_page_timeline_kinds_merge_and_call(site: Site) -> None:
    # A near duplicate of Ada Lovelace (same name and company, another email).
    r = httpx.post(
        f"{site.base}/api/v1/leads",
        headers=_api_headers(site),
        json={
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company": "Analytical Engines",
            "email": "ada.l@example.org",
            "tags": ["twin"],
        },
        timeout=30,
    )
    r.raise_for_status()
    page = site.go("/crm/leads?q=ada%40example.com")
    page.click("table.leads a")
    page.get_by_test_id("lead-name").wait_for()
    # Duplicates: the panel lists the twin; merge it through the dialog.
    page.get_by_test_id("duplicates").wait_for()
    page.click("#merge-open")
    dialog = page.locator("#merge-dialog")
    dialog.wait_for(state="visible")
    site.check()
    box = dialog.locator("input[name=other_ids]").first.bounding_box()
    reasons = dialog.locator("label small").first.bounding_box()
    assert box is not None and reasons is not None
    # The reasons stay beside the box, not drawn over it (Pico pulls an input's
    # `+ small` helper text up under the input).
    assert reasons["x"] >= box["x"] + box["width"] or reasons["y"] >= box["y"] + box["height"]
    dialog.locator("input[name=other_ids]").first.click()
    assert dialog.locator("input[name=other_ids]").first.is_checked()
    page.click("#merge-confirm")
    page.locator("#lead-duplicates", has_text="No likely duplicates.").wait_for()
    site.check()
    page.reload()
    assert "twin" in page.locator("#lead-tags").input_value()  # the merged lead's tag
    # A call request: its status shows in the panel.
    page.locator("#call-request").wait_for()
    page.fill("#call-number", "+49 30 1234567")
    page.click("#call-request")
    page.get_by_test_id("call-status").first.wait_for()
    site.check("lead-call")
    # The timeline (the merge and the call are in it), then only one kind of entry.
    page.reload()
    others = page.locator("#timeline li:not([data-kind=status_change])")
    assert others.count() >= 1, page.locator("#timeline").inner_text()
    page.locator(".timeline-kinds input[value=status_change]").check()
    page.wait_for_function(
        """() => { const items = [...document.querySelectorAll('#timeline li')];
                   return items.length > 0
                       && items.every(li => li.dataset.kind === 'status_change') }"""
    )
    site.check()
    page.locator(".timeline-kinds input[value=status_change]").uncheck()
    others.first.wait_for()
    site.check()


def test_a_report_is_scheduled_and_its_history_kept(site: Site) -> None:
    page = site.go("/crm/reports?template=leads_by_source_and_month")
    page.fill("#r-name", "Weekly sources")
    page.click("#report-form button[type=submit]")
    page.get_by_test_id("report-name").wait_for()
    page.select_option("#s-frequency", "weekly")
    page.fill("#s-time", "07:30")
    page.fill("#s-dow", "1")
    page.fill("#s-recipients", EMAIL)
    page.click("#schedule-form button[type=submit]")
    schedule = page.get_by_test_id("schedules").locator("li[data-status=active]")
    schedule.wait_for()
    assert "07:30" in schedule.inner_text() and EMAIL in schedule.inner_text()
    site.check("report-schedule")
    with page.expect_download():
        page.click("#export-form button[value=csv]")
    page.reload()
    assert page.locator("[data-testid=runs] tbody tr").count() == 1
    assert page.get_by_test_id("schedules").locator("li").count() == 1
    # Pause, then delete the schedule; the history stays.
    page.click("[data-testid=schedules] button[value=pause]")
    page.locator("[data-testid=schedules] li[data-status=paused]").wait_for()
    page.click("[data-testid=schedules] button[value=delete]")
    page.wait_for_function("() => !document.querySelector('[data-testid=schedules]')")
    assert page.locator("[data-testid=runs] tbody tr").count() == 1
    site.check()


SMALL_CSV = (
    "Name;E-Mail;Firma\n"
    "Ruth Undo;ruth.undo@example.com;Undo GmbH\n"
    "Paul Undo;paul.undo@example.com;Undo GmbH\n"
)


def test_an_import_is_undone_and_its_leads_leave_the_list(site: Site) -> None:
    page = site.go("/crm/import")
    file = {"name": "two.csv", "mimeType": "text/csv", "buffer": SMALL_CSV.encode()}
    page.set_input_files("#import-file", files=[file])
    page.get_by_test_id("import-preview").wait_for()
    page.click("#dry-run-button")
    page.get_by_test_id("dry-run-result").wait_for()
    page.click("#import-button")
    page.wait_for_url("**/crm/import/*")
    page.locator("#batch[data-status=completed]").wait_for()  # 2 rows: imported at once
    assert page.get_by_test_id("batch-imported").inner_text() == "2"
    site.go("/crm/leads?q=undo")
    assert page.get_by_test_id("lead-count").inner_text() == "2 leads"
    page.go_back()
    page.once("dialog", lambda d: d.accept())
    page.click("#undo-button")
    page.locator("#batch[data-status=undone]").wait_for()
    site.check()
    site.go("/crm/leads?q=undo")
    assert page.get_by_test_id("lead-count").inner_text() == "0 leads"
    site.check()


def test_an_invitation_link_sets_a_password_and_signs_in(site: Site) -> None:
    page = site.go("/admin/users")
    page.fill("#f-full_name", "Nina Neu")
    page.fill("#f-email", "nina@example.com")
    page.click("#invite-form button[type=submit]")
    page.get_by_test_id("done").wait_for()
    assert page.locator("[data-user='nina@example.com']").count() == 1
    site.check()
    with ThreadPoolExecutor(1) as pool:
        invitation_id = pool.submit(asyncio.run, _invitation_of(site, "nina@example.com")).result()
    link = invitation_token(SERVED_SECRET, invitation_id)
    page.locator("details.dropdown summary").click()
    page.click("form[action='/logout'] button")
    page.wait_for_url("**/login")
    site.go(f"/accept-invite?token={link}")
    site.check("accept-invite")
    page.fill("#password", "short")
    page.fill("#password2", "short")
    # The browser's own minlength check would stop the form; the server's check is the point.
    page.evaluate(
        "() => document.querySelector('form[action=\"/accept-invite\"]').noValidate = true"
    )
    page.click("form[action='/accept-invite'] button[type=submit]")
    page.locator("#invite-error").wait_for()
    assert page.locator("#password").get_attribute("aria-invalid") == "true"
    site.check(refused=(422,))
    page.fill("#password", "long enough 1")
    page.fill("#password2", "long enough 1")
    page.click("form[action='/accept-invite'] button[type=submit]")
    page.wait_for_url(site.base + "/")
    assert page.get_by_test_id("org-name").inner_text() == "Nordlicht Vertrieb GmbH"
    assert page.locator("details.dropdown summary").inner_text() == "nina@example.com"
    site.check()


async def _invitation_of(site: Site, email: str) -> uuid.UUID:
    db = Database(site.database_url, pool_size=1)
    try:
        async with db.sessionmaker() as s:
            user_id = await s.scalar(select(User.id).where(User.email == email))
            invitation_id = await s.scalar(
                select(Invitation.id)
                .where(Invitation.user_id == user_id)
                .order_by(Invitation.created_at.desc())
            )
            assert invitation_id is not None
            return invitation_id
    finally:
        await db.dispose()
