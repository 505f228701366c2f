"""Permission strings and the roles every organisation ships with."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RowScope(StrEnum):
    """Which rows a role sees: its own, its team's, or the organisation's."""

    OWN = "own"
    TEAM = "team"
    ORG = "org"


ALL_PERMISSIONS: tuple[str, ...] = (
    "leads:read",
    "leads:write",
    "leads:assign",
    "leads:export",
    "leads:delete",
    "imports:write",
    "tasks:read",
    "tasks:write",
    "events:write",
    "ai:use",
    "calls:read",
    "calls:write",
    "pipeline:write",
    "analytics:read",
    "reports:read",
    "users:read",
    "admin:users",
    "admin:roles",
    "admin:api_keys",
    "admin:audit",
    "admin:settings",
)


@dataclass(frozen=True)
class RoleSpec:
    """Definition of a built-in role."""

    name: str
    description: str
    row_scope: RowScope
    permissions: tuple[str, ...]


_READ = ("leads:read", "tasks:read", "calls:read", "users:read")
_WORK = ("leads:write", "tasks:write", "ai:use", "calls:write")

SYSTEM_ROLES: dict[str, RoleSpec] = {
    "admin": RoleSpec("admin", "Everything in the organisation", RowScope.ORG, ALL_PERMISSIONS),
    "manager": RoleSpec(
        "manager",
        "The team's leads, team analytics and reports",
        RowScope.TEAM,
        (
            *_READ,
            *_WORK,
            "leads:assign",
            "leads:export",
            "leads:delete",
            "imports:write",
            "analytics:read",
            "reports:read",
        ),
    ),
    "counselor": RoleSpec(
        "counselor",
        "Own and assigned leads, own statistics",
        RowScope.OWN,
        (*_READ, *_WORK, "analytics:read"),
    ),
    "viewer": RoleSpec(
        "viewer",
        "Read-only view of the organisation",
        RowScope.ORG,
        (*_READ, "analytics:read", "reports:read"),
    ),
}
