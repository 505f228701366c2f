"""Errors of user management."""

from __future__ import annotations

from leadflow.exceptions import Conflict


class EmailTaken(Conflict):
    """A user (in any organisation) already has this email."""

    code = "email_taken"


class SelfTeamChange(Conflict):
    """A user tried to change their own team."""

    code = "self_team_change"


class SelfDeactivation(Conflict):
    """A user tried to change their own status."""

    code = "self_deactivation"


class LastAdmin(Conflict):
    """The organisation's last active admin would be demoted or deactivated."""

    code = "last_admin"
