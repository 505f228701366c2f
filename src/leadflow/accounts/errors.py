"""Errors of member administration: invitations and impersonation."""

from __future__ import annotations

from leadflow.exceptions import BadRequest, Conflict, Forbidden, LeadflowError


class InvitationInvalid(BadRequest):
    """The invitation token is unknown or was withdrawn (a newer one, a deactivation)."""

    code = "invitation_invalid"


class InvitationExpired(LeadflowError):
    """The invitation is older than its 72 hours."""

    status = 410
    code = "invitation_expired"
    title = "Gone"


class InvitationUsed(LeadflowError):
    """The invitation was already accepted (each link works once)."""

    status = 410
    code = "invitation_used"
    title = "Gone"


class InvitationNotNeeded(Conflict):
    """The user already has a password: an invitation is for setting the first one."""

    code = "invitation_not_needed"


class UserInactive(Conflict):
    """The action needs an active user (invite, impersonate)."""

    code = "user_inactive"


class ImpersonationNotAllowed(Forbidden):
    """Only an admin in person may impersonate, and never an admin or themselves."""

    code = "impersonation_not_allowed"
