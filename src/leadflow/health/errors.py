"""Errors of the readiness check."""

from __future__ import annotations

from leadflow.exceptions import ServiceUnavailable


class DatabaseUnavailable(ServiceUnavailable):
    """The database did not answer the readiness probe."""

    code = "database_unavailable"
