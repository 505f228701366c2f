"""Errors of notifications."""

from __future__ import annotations

from leadflow.exceptions import Conflict


class NotAssigned(Conflict):
    """The "lead assigned" email would be resent for a lead without an assignee."""

    code = "not_assigned"


class AssigneeInactive(Conflict):
    """The "lead assigned" email would be resent to an assignee who is no longer active."""

    code = "assignee_inactive"
