"""Errors of the health checks, and the warning codes of the admin health answer."""

from __future__ import annotations

from leadflow.exceptions import DatabaseUnavailable, Forbidden, ValidationFailed

# The readiness probe answers with the same error as any request that meets a database outage.
__all__ = ["DatabaseUnavailable"]


class OperatorOnly(Forbidden):
    """An admin of an organisation other than the operator's asked for the system health."""

    code = "operator_only"


class InvalidTimeRange(ValidationFailed):
    """`time_range` is not `<n>m`, `<n>h` or `<n>d` between 5 minutes and the retention."""

    code = "invalid_time_range"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=[{"loc": ["query", "time_range"], "msg": detail}])


# Warnings of GET /api/v1/admin/health (`warnings: [{code, detail}]`; status `degraded`).
NO_WORKER_ALIVE = "no_worker_alive"
OUTBOX_STALLED = "outbox_stalled"
SAMPLER_BEHIND = "sampler_behind"
QUEUE_UNREACHABLE = "queue_unreachable"
