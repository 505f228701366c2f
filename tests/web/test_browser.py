"""The web app in a real browser: Playwright drives Debian's Chromium against `leadflow serve`.

One server (SQLite, migrated once) and one signed-in browser for the module; every page is
checked with axe-core (no serious or critical violations) and for console errors, and the main
pages are saved to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from leadflow.db import migrate
from leadflow.db.engine import Database
from leadflow.models.outbox import Notification
from leadflow.models.user import User
from tests.fixtures.server import Served, serve
from tests.fixtures.services import IN_CI

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("LEADFLOW_TEST_CHROMIUM", "/usr/bin/chromium")
# The README's pictures are refreshed on request (`make screenshots`); an ordinary run saves
# them to a temporary folder, so it leaves the checkout as it found it.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("LEADFLOW_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / f"leadflow-screenshots-{os.getpid()}"
)
AXE = "/static/vendor/axe-core-4.14.1/axe.min.js"
EMAIL, PASSWORD = "owner@example.com", "correct horse battery"

if not Path(CHROMIUM).exists():
    if IN_CI:
        raise RuntimeError(f"CI=true but no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)

Page = Any  # playwright.sync_api.Page (imported lazily above)


class Site:
    """The served app, its database URL and the browser page signed in to it."""

    def __init__(self, served: Served, database_url: str, page: Page) -> None:
        self.base = served.base_url
        self.database_url = database_url
        self.page = page
        self.console: list[str] = []
        page.on(
            "console",
            lambda m: self.console.append(f"{page.url}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.console.append(f"page error: {e}"))

    def go(self, path: str) -> Page:
        """Open `path` and wait for it to load."""
        self.page.goto(self.base + path)
        return self.page

    def check(self, screenshot: str | None = None, *, refused: tuple[int, ...] = ()) -> None:
        """No console errors so far (but the failed loads of the `refused` statuses a flow
        provoked on purpose), no serious axe violations here; save a screenshot."""
        expected = tuple(f"status of {status} " for status in refused)
        errors = [e for e in self.console if not (expected and any(x in e for x in expected))]
        self.console.clear()
        assert errors == [], "\n".join(errors)
        self.page.add_script_tag(url=self.base + AXE)
        violations = self.page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"""
        )
        assert violations == [], violations
        if screenshot:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SCREENSHOTS / f"{screenshot}.png"))


def _seed(base: str) -> None:
    """An organisation, its admin and a few leads, through the API."""
    r = httpx.post(
        f"{base}/api/v1/auth/register",
        json={
            "email": EMAIL,
            "password": PASSWORD,
            "full_name": "Olivia Owner",
            "organization_name": "Nordlicht Vertrieb GmbH",
        },
        timeout=30,
    )
    r.raise_for_status()
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    people = [
        ("Ada", "Lovelace", "Analytical Engines", "messe"),
        ("Grace", "Hopper", "Compiler AG", "website"),
        ("Alan", "Turing", "Bletchley Consulting", "linkedin"),
        ("Katherine", "Johnson", "Orbit GmbH", "website"),
        ("Emmy", "Noether", "Symmetrie KG", "newsletter"),
        ("Konrad", "Zuse", "Z3 Rechenwerke", "messe"),
        ("Hedy", "Lamarr", "Frequenz AG", "google_ads"),
        ("Margaret", "Hamilton", "Apollo Software", "website"),
    ]
    stages = ["new", "contacted", "qualified", "proposal", "new", "contacted", "new", "won"]
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        for n, ((first, last, company, source), stage) in enumerate(
            zip(people, stages, strict=True)
        ):
            body = {
                "first_name": first,
                "last_name": last,
                "company": company,
                "source": source,
                "email": f"{first.lower()}@example.com",
                "status": stage,
                "tags": ["demo"],
                "needs_action": n % 3 == 0,
                "next_action_description": "Call back" if n % 3 == 0 else None,
            }
            c.post("/api/v1/leads", json=body).raise_for_status()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A served app with seeded data and a Chromium page signed in as its admin."""
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite+aiosqlite:///{folder / 'web.db'}"
    migrate.upgrade(url)
    # Files of more than 3 rows import in the background (the wizard shows live progress).
    with serve(url, folder, register_per_hour="100", import_sync_max_rows="3") as served:
        _seed(served.base_url)
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            context = browser.new_context(
                viewport={"width": 1280, "height": 800}, locale="en-GB", accept_downloads=True
            )
            context.set_default_timeout(10_000)
            try:
                yield Site(served, url, context.new_page())
            finally:
                # Close the pages first: their event streams end, the server stops at once.
                context.close()
                browser.close()


def test_sign_in_and_the_dashboard(site: Site) -> None:
    page = site.go("/")
    assert page.url.startswith(site.base + "/login")
    site.check("login")
    page.fill("#email", EMAIL)
    page.fill("#password", "wrong password")
    page.click("form[action='/login'] button[type=submit]")
    assert page.locator("#login-error").is_visible()
    site.check(refused=(401,))
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(site.base + "/")
    assert page.get_by_test_id("org-name").inner_text() == "Nordlicht Vertrieb GmbH"
    assert page.get_by_test_id("kpi-total").inner_text() == "8"
    page.wait_for_function("() => !!document.querySelector('#volume-chart').dataset.chart")
    site.check("dashboard")


def test_search_as_you_type_filters_and_bulk_status(site: Site) -> None:
    page = site.go("/crm/leads")
    assert page.get_by_test_id("lead-count").inner_text() == "8 leads"
    site.check("leads")
    page.fill("#q", "lovel")
    page.get_by_test_id("lead-count").filter(has_text="1 leads").wait_for()
    assert "q=lovel" in page.url  # the view is in the address (and its export)
    page.fill("#q", "")
    page.get_by_test_id("lead-count").filter(has_text="8 leads").wait_for()
    page.select_option("#f-status", "new")
    page.get_by_test_id("lead-count").filter(has_text="3 leads").wait_for()
    # Bulk: the first two "new" leads to "contacted", after the confirmation.
    boxes = page.locator("input[name=ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.select_option("#bulk-action", "status")
    page.fill("#bulk input[name=value]", "contacted")
    page.once("dialog", lambda d: d.accept())
    page.click("#bulk button[type=submit]")
    page.get_by_test_id("bulk-message").filter(has_text="2 of 2 leads updated").wait_for()
    assert page.get_by_test_id("lead-count").inner_text() == "1 leads"
    with page.expect_download() as download:
        page.click(".export button[value=csv]")
    assert download.value.suggested_filename.endswith(".csv")
    site.check()


def test_the_lead_page_saves_with_inline_messages(site: Site) -> None:
    page = site.go("/crm/leads?q=hopper")
    page.click("table.leads a")
    page.get_by_test_id("lead-name").wait_for()
    site.check("lead")
    page.fill("#lead-email", "not-an-email")
    page.click("#lead-form button[type=submit]")
    page.locator("#err-email").wait_for()
    assert page.locator("#lead-email").get_attribute("aria-invalid") == "true"
    page.fill("#lead-email", "grace.hopper@example.com")
    page.fill("#lead-company", "Navy Compiler AG")
    page.click("#lead-form button[type=submit]")
    page.locator("#lead-form .flash-ok").wait_for()
    page.select_option("#stage-select", "qualified")
    page.click("#lead-side form[action$='/status'] button")
    page.get_by_test_id("lead-stage").filter(has_text="Qualified").wait_for()
    page.reload()
    assert page.locator("#lead-company").input_value() == "Navy Compiler AG"
    assert page.locator(".timeline-list li[data-kind=status_change]").count() >= 2
    site.check(refused=(422,))


def test_the_board_moves_a_card_by_drag_and_drop(site: Site) -> None:
    page = site.go("/crm/pipeline")
    won = page.locator(".column[data-stage=won]")
    assert won.locator("h2 .badge").inner_text() == "1"
    site.check("pipeline")
    card = page.locator(".column[data-stage=proposal] .card").first
    name = card.locator("a").inner_text()
    card.drag_to(won.locator(".cards"))
    won.locator(".card", has_text=name).wait_for()
    page.wait_for_function(
        "() => document.querySelector('.column[data-stage=won] h2 .badge').textContent === '2'"
    )
    page.reload()
    assert page.locator(".column[data-stage=won] .card", has_text=name).count() == 1
    site.check()


def test_pages_fit_a_phone_screen(site: Site) -> None:
    page = site.page
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        for path in ("/", "/crm/leads", "/crm/pipeline", "/crm/notifications"):
            site.go(path)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
        site.go("/crm/leads")
        site.check("leads-phone")
    finally:
        page.set_viewport_size({"width": 1280, "height": 800})


def test_the_bell_rings_live(site: Site) -> None:
    page = site.go("/crm/leads")
    assert page.locator("#bell-count").inner_text() == "0"
    # Let the stream connect before the notification exists (it starts after the newest one).
    page.wait_for_timeout(300)
    # Playwright's sync API owns this thread's event loop: write from another thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _notify(site.database_url)).result()
    page.wait_for_function("() => document.querySelector('#bell-count').textContent === '1'")
    assert "1 unread" in (page.locator("#bell").get_attribute("aria-label") or "")
    page.click("#bell")
    page.get_by_text("A lead was assigned to you").wait_for()
    page.click("form[action='/notifications/read-all'] button")
    page.wait_for_url("**/crm/notifications")
    assert page.locator("#bell-count").inner_text() == "0"
    site.check()


async def _notify(url: str) -> None:
    db = Database(url, pool_size=1)
    try:
        async with db.sessionmaker() as s:
            user = await s.scalar(select(User).where(User.email == EMAIL))
            assert user is not None
            s.add(
                Notification(
                    organization_id=user.organization_id,
                    user_id=user.id,
                    kind="test",
                    title="A lead was assigned to you",
                    data={},
                    delivery_key=f"browser-test:{uuid.uuid4()}",
                )
            )
            await s.commit()
    finally:
        await db.dispose()


IMPORT_CSV = (
    "Name;E-Mail;Status;Firma\n"
    "Lea Kramer;lea.kramer@example.com;offen;Kramer Coaching\n"
    "Jonas Becker;jonas.becker@example.com;gewonnen;Becker GmbH\n"
    "Mia Schulz;not-an-email;offen;\n"
    "Felix Wagner;felix.wagner@example.com;Angebot;Wagner Steuerberatung\n"
)


def test_the_import_wizard_previews_dry_runs_imports_and_undoes(site: Site) -> None:
    page = site.go("/crm/import")
    file = {"name": "leads.csv", "mimeType": "text/csv", "buffer": IMPORT_CSV.encode()}
    page.set_input_files("#import-file", files=[file])  # choosing the file shows the proposal
    page.get_by_test_id("import-preview").wait_for()
    email = page.locator("select[data-column='E-Mail']")
    assert email.input_value() == "email"
    site.check("import-preview")
    page.click("#dry-run-button")
    page.get_by_test_id("dry-run-result").wait_for()
    assert page.get_by_test_id("dry-imported").inner_text() == "3"
    assert page.get_by_test_id("dry-errors").inner_text() == "1"
    site.check()
    page.click("#import-button")
    page.wait_for_url("**/crm/import/*")
    # A background import (4 rows > 3): the page polls until the worker has finished.
    page.locator("#batch[data-status=completed]").wait_for(timeout=30_000)
    assert page.get_by_test_id("batch-imported").inner_text() == "3"
    with page.expect_download() as download:
        page.get_by_test_id("errors-csv").click()
    assert download.value.suggested_filename.endswith("-errors.csv")
    site.check("import-result")
    page.once("dialog", lambda d: d.accept())
    page.click("#undo-button")
    page.locator("#batch[data-status=undone]").wait_for()
    site.check()


def test_admin_pages_create_an_api_key_shown_once(site: Site) -> None:
    page = site.go("/admin")
    page.wait_for_url("**/admin/users")
    assert page.locator("[data-user='owner@example.com']").count() == 1
    site.check("admin-users")
    site.go("/admin/api-keys")
    page.fill("#f-name", "Zapier")
    page.check("input[name=scopes][value='leads:read']")
    page.click("#key-form button[type=submit]")
    key = page.locator("#new-key-value").inner_text()
    assert key.startswith("lf_")
    site.check("admin-api-keys")
    listed = site.go("/admin/api-keys")
    assert key not in listed.content()  # shown once
    listed.once("dialog", lambda d: d.accept())
    listed.click("[data-testid=keys] form button")
    listed.get_by_test_id("done").wait_for()
    assert "revoked" in listed.locator("[data-testid=keys] tbody tr").first.inner_text()
    for path in (
        "/admin/roles",
        "/admin/webhooks",
        "/admin/integrations",
        "/admin/audit",
        "/admin/jobs",
        "/admin/health",
    ):
        site.go(path)
        site.check()


def test_the_ai_panel_drafts_and_applies_and_tasks_are_added(site: Site) -> None:
    page = site.go("/crm/leads?q=turing")
    page.click("table.leads a")
    page.locator("#ai-panel").wait_for()
    page.locator("#lead-tasks").wait_for()  # the panels load after the page
    page.select_option("#ai-channel", "whatsapp")
    page.select_option("#ai-language", "de")
    page.click("#ai-draft")
    page.get_by_test_id("ai-draft").wait_for()
    assert "Alan" in page.locator("#ai-draft-text").input_value()
    assert page.locator(".ai-warning").count() >= 1  # no WhatsApp consent on record
    page.click("#ai-copy")
    site.check("lead-ai")
    page.click("#ai-analyze")
    page.locator("#ai-apply").wait_for()
    page.click("#ai-apply")
    page.get_by_test_id("ai-applied").wait_for()
    page.fill("#task-title", "Send the offer")
    page.click("#lead-tasks .task-add button[type=submit]")
    page.locator("#lead-tasks [data-testid=tasks]", has_text="Send the offer").wait_for()
    site.check()


def test_a_report_is_built_previewed_and_exported(site: Site) -> None:
    page = site.go("/crm/reports?template=leads_by_source_and_month")
    site.check("reports")
    page.fill("#r-name", "Leads by source")
    page.click("#report-form button[type=submit]")
    page.get_by_test_id("report-name").wait_for()
    assert page.locator("[data-testid=report-preview] tbody tr").count() >= 1
    site.check("report")
    with page.expect_download() as download:
        page.click("#export-form button[value=csv]")
    assert download.value.suggested_filename.endswith(".csv")
    page.reload()
    assert page.locator("[data-testid=runs] tbody tr").count() == 1


def test_german_error_pages_and_sign_out(site: Site) -> None:
    page = site.go("/crm/leads")
    page.click(".language-switch button[value=de]")
    page.wait_for_url("**/crm/leads")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.get_by_role("link", name="Übersicht").is_visible()
    response = page.goto(f"{site.base}/crm/leads/{uuid.uuid4()}")
    assert response is not None and response.status == 404
    assert "Seite nicht gefunden" in page.locator("h1").inner_text()
    site.check("not-found", refused=(404,))
    site.go("/crm/leads")
    page.click(".language-switch button[value=en]")
    page.wait_for_url("**/crm/leads")
    assert page.locator("html").get_attribute("lang") == "en"
    page.locator("details.dropdown summary").click()
    page.click("form[action='/logout'] button")
    page.wait_for_url("**/login")
    assert site.go("/crm/leads").url.startswith(site.base + "/login")
    site.check()
