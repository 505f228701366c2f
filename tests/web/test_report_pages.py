"""Report pages (build, preview, export, schedule, history) and "my day" on the dashboard."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import utcnow
from leadflow.models.report import Report, ReportSchedule
from leadflow.models.task import Task
from tests.fixtures.factories import Factory
from tests.web.helpers import browser

BUILDER = {
    "name": "Leads by source",
    "fields": ["source"],
    "grouping": ["source", ""],
    "agg_function_0": "count",
    "filter_field_0": "score",
    "filter_op_0": "gte",
    "filter_value_0": "10",
    "sort_field": "source",
}


async def test_build_preview_export_and_history(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    me = await browser(factory, org)
    for source, score in (("messe", 50), ("messe", 20), ("web", 30), ("web", 5)):
        await factory.lead(org, source=source, score=score)
    page = await me.get(client, "/crm/reports?template=pipeline_by_stage")
    assert page.status_code == 200 and 'name="fields" value="stage" checked' in page.text
    assert (await me.post(client, "/crm/reports", BUILDER, csrf=False)).status_code == 403
    r = await me.post(client, "/crm/reports", BUILDER)
    assert r.status_code == 303, r.text
    report = await session.scalar(select(Report).where(Report.organization_id == org.id))
    assert report is not None and r.headers["location"] == f"/crm/reports/{report.id}"
    assert report.definition["filters"] == [{"field": "score", "op": "gte", "value": 10}]
    shown = await me.get(client, f"/crm/reports/{report.id}")
    assert shown.status_code == 200
    cells = re.findall(r"<td>([^<]*)</td>", shown.text.split('data-testid="report-preview"')[1])
    assert cells[:4] == ["messe", "2", "web", "1"]  # the score >= 10 filter dropped one lead
    bad = await me.post(client, "/crm/reports", {**BUILDER, "fields": ["no_such_field"]})
    assert bad.status_code == 422 and 'data-testid="report-errors"' in bad.text

    exported = await me.post(client, f"/crm/reports/{report.id}/export", {"format": "csv"})
    assert exported.status_code == 303
    download = await client.get(exported.headers["location"])
    assert download.status_code == 200 and "messe" in download.text
    history = await me.get(client, f"/crm/reports/{report.id}")
    assert 'data-testid="runs"' in history.text and ">Download<" in history.text

    stranger = await browser(factory, other)
    assert (await stranger.get(client, f"/crm/reports/{report.id}")).status_code == 404
    viewer = await browser(factory, org, "viewer")  # reports:read without leads:export
    assert (await viewer.post(client, f"/crm/reports/{report.id}/export", {})).status_code == 403
    assert (await viewer.get(client, f"/crm/reports/{report.id}")).status_code == 404  # not theirs


async def test_schedules_are_created_paused_and_refused_for_outsiders(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    await me.post(client, "/crm/reports", BUILDER)
    report = await session.scalar(select(Report).where(Report.organization_id == org.id))
    assert report is not None
    url = f"/crm/reports/{report.id}/schedule"
    form = {"frequency": "weekly", "time": "07:30", "day_of_week": "1", "format": "csv"}
    outsider = await me.post(client, url, {**form, "recipients": "someone@elsewhere.example"})
    assert outsider.status_code == 422 and 'data-testid="schedule-errors"' in outsider.text
    ok = await me.post(client, url, {**form, "recipients": me.user.email})
    assert ok.status_code == 303
    schedule = await session.scalar(
        select(ReportSchedule).where(ReportSchedule.report_id == report.id)
    )
    assert schedule is not None and schedule.status == "active"
    paused = await me.post(
        client, f"/crm/reports/{report.id}/schedules/{schedule.id}", {"action": "pause"}
    )
    assert paused.status_code == 303
    await session.refresh(schedule)
    assert schedule.status == "paused"
    page = await me.get(client, f"/crm/reports/{report.id}")
    assert 'data-status="paused"' in page.text


async def test_my_day_shows_my_tasks_clocks_and_leads(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org, "counselor")
    colleague = await factory.user(org, "counselor")
    now = utcnow()
    mine = await factory.lead(
        org,
        first_name="Mine",
        assignee_id=me.user.id,
        needs_action=True,
        sla_started_at=now - timedelta(hours=3),
        sla_deadline=now - timedelta(hours=1),
    )
    await factory.lead(org, first_name="Theirs", assignee_id=colleague.id, needs_action=True)
    session.add_all(
        [
            Task(
                organization_id=org.id,
                title="Call back today",
                due_at=now + timedelta(hours=2),
                assignee_id=me.user.id,
                lead_id=mine.id,
                status="open",
                priority="normal",
            ),
            Task(
                organization_id=org.id,
                title="Next month",
                due_at=now + timedelta(days=30),
                assignee_id=me.user.id,
                status="open",
                priority="normal",
            ),
        ]
    )
    await session.commit()
    page = await me.get(client, "/")
    assert page.status_code == 200
    day = page.text.split('data-testid="my-day"')[1].split("</section>")[0]
    assert "Call back today" in day and "Next month" not in day
    assert 'data-state="breached"' in day and "Mine" in day and "Theirs" not in day
