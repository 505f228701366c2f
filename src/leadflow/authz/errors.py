"""Errors of authorisation: missing permissions and attempts to grant more than one holds."""

from __future__ import annotations

from leadflow.exceptions import Forbidden


class MissingPermission(Forbidden):
    """The actor lacks the permission an action needs (raised by `Actor.require` only)."""

    code = "missing_permission"


class PrivilegeEscalation(Forbidden):
    """The actor would grant, change or set up more power than they hold themselves."""

    code = "privilege_escalation"
