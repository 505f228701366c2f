"""Analytics and dashboard answers, and the filters they take."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class LeadFilters:
    """Filters on the leads counted (their current values): `assignee_id` is a user id, or
    None with `unassigned` for leads without an assignee."""

    source: str | None = None
    status: str | None = None
    assignee_id: uuid.UUID | None = None
    unassigned: bool = False


class PeriodRead(BaseModel):
    """The period an answer covers: local dates, inclusive, in `timezone`."""

    date_from: date
    date_to: date
    timezone: str


class ActivePipeline(BaseModel):
    """Open leads now, and their value (the numeric custom field `value`)."""

    leads: int
    weighted_leads: float
    value: float
    weighted_value: float


class Kpis(BaseModel):
    """The headline figures of a period."""

    period: PeriodRead
    total_leads: int
    new_leads: int
    enrollments: int
    new_leads_enrolled: int
    conversion_rate: float
    active_pipeline: ActivePipeline
    median_first_response_minutes: float | None
    responses: int
    sla_compliance_rate: float
    sla_clocks_ended: int
    sla_met_in_time: int


class VolumePoint(BaseModel):
    """Leads created in one bucket (the bucket's first day)."""

    date: date
    count: int


class FunnelStage(BaseModel):
    """Leads of the period's cohort that reached a stage."""

    stage: str
    name: str
    category: str
    count: int
    percentage: float
    drop_off_rate: float


class SourceConversion(BaseModel):
    """The period's new leads of one source and how many of them were won."""

    source: str | None
    total_leads: int
    enrolled: int
    conversion_rate: float


class CounselorStats(BaseModel):
    """One assignee's figures for the period."""

    user_id: uuid.UUID
    full_name: str
    leads: int
    interactions: int
    enrollments: int
    conversion_rate: float
    median_response_minutes: float | None
    sla_breaches: int


AlertType = Literal[
    "sla_breached", "sla_at_risk", "lead_untouched", "job_failed", "email_failed", "import_failed"
]
Severity = Literal["critical", "warning", "info"]


class Alert(BaseModel):
    """Something that needs attention; `link` is the API path of the thing concerned."""

    type: AlertType
    severity: Severity
    title: str
    description: str
    link: str
    created_at: datetime


class StatusCount(BaseModel):
    """Leads in one status now."""

    status: str
    name: str
    category: str | None
    count: int


class DashboardMetrics(BaseModel):
    """The state of the leads in scope now."""

    timezone: str
    total_leads: int
    by_status: list[StatusCount]
    assigned: int
    unassigned: int
    new_today: int
    new_this_week: int
    sla_at_risk: int
    sla_breached: int


class AssigneeLoad(BaseModel):
    """One assignee's leads now, against their capacity."""

    user_id: uuid.UUID
    full_name: str
    open: int
    won: int
    breached: int
    capacity: int | None
    load_percent: float | None
    at_capacity: bool
