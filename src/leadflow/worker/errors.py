"""Errors of the job queue's admin endpoints."""

from __future__ import annotations

from leadflow.exceptions import Conflict


class NotFailed(Conflict):
    """A job that has not failed would be retried."""

    code = "not_failed"
