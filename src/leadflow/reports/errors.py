"""Errors of reports."""

from __future__ import annotations

from leadflow.exceptions import Forbidden, LeadflowError


class InvalidReport(LeadflowError):
    """A report definition that cannot be run (a value of the wrong type, a sort on a column
    the report does not have…); `errors: [{loc, msg}]` says where."""

    status = 422
    code = "invalid_report"
    title = "The report definition is invalid"


class UnknownField(InvalidReport):
    """A field that is not in the published catalogue (`GET /reports/fields`)."""

    code = "unknown_field"


class UnknownAggregation(InvalidReport):
    """An aggregation other than count, sum, avg, min and max."""

    code = "unknown_aggregation"


class UnknownOperator(InvalidReport):
    """A filter operator that is not in the published list."""

    code = "unknown_operator"


class ReportTooLarge(LeadflowError):
    """A run would export more rows than `LEADFLOW_REPORT_MAX_ROWS`."""

    status = 422
    code = "report_too_large"
    title = "The report has too many rows"


class IntegrationRequired(LeadflowError):
    """The output format needs an integration that is not set up (Google Sheets)."""

    status = 422
    code = "integration_required"
    title = "Integration required"


class RecipientsNotMembers(LeadflowError):
    """Schedule recipients that are not active members of the caller's organisation."""

    status = 422
    code = "recipients_not_members"
    title = "Recipients must be active members of the organisation"


class TooManySchedules(LeadflowError):
    """The caller already has `LEADFLOW_REPORT_MAX_SCHEDULES_PER_USER` schedules."""

    status = 409
    code = "too_many_schedules"
    title = "Too many schedules"


class InvalidDownloadLink(Forbidden):
    """A download link whose signature does not match (altered, or not issued here)."""

    code = "invalid_download_link"
    title = "Invalid download link"


class DownloadLinkExpired(Forbidden):
    """A download link past its expiry."""

    code = "download_link_expired"
    title = "Download link expired"


class DownloadNotAllowed(Forbidden):
    """The run's owner is no longer active, or may no longer read reports or export leads:
    the links they were given stop working with them."""

    code = "download_not_allowed"
    title = "Download not allowed"
