"""Errors of leads."""

from __future__ import annotations

from leadflow.exceptions import Conflict, PayloadTooLarge


class DuplicateLead(Conflict):
    """Another live lead has this email or phone."""

    code = "duplicate_lead"


class VersionConflict(Conflict):
    """The `If-Match` version is not the lead's current one."""

    code = "version_conflict"


class BulkTooLarge(PayloadTooLarge):
    """A bulk action's filter matches more leads than allowed at once."""

    code = "bulk_too_large"
