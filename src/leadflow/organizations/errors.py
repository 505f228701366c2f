"""Errors of roles and teams."""

from __future__ import annotations

from leadflow.exceptions import Conflict


class RoleExists(Conflict):
    """A role with this name already exists in the organisation."""

    code = "role_exists"


class SystemRole(Conflict):
    """A built-in role would be changed or deleted."""

    code = "system_role"


class RoleInUse(Conflict):
    """A role still held by users would be deleted."""

    code = "role_in_use"


class SelfRoleChange(Conflict):
    """A user tried to change their own role, or edit the role they hold."""

    code = "self_role_change"


class TeamExists(Conflict):
    """A team with this name already exists in the organisation."""

    code = "team_exists"
