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


# What each permission allows, as `GET /api/v1/admin/permissions` publishes it. Every entry of
# ALL_PERMISSIONS has one (tests/accounts/test_roles.py checks it).
PERMISSION_DESCRIPTIONS: dict[str, str] = {
    "leads:read": "List and read leads in the role's row scope: timeline, duplicates, needs-action",
    "leads:write": "Create and edit leads: status, notes, consents, events, tags, bulk edits",
    "leads:assign": "Set or change a lead's assignee",
    "leads:export": "Export leads (CSV, XLSX); with reports:read also export and schedule reports",
    "leads:delete": "Delete leads and merge duplicates (merging removes the merged leads)",
    "imports:write": "Import lead files; see and undo the imports in the role's scope",
    "tasks:read": "Read tasks and interactions",
    "tasks:write": "Create, change and delete tasks and interactions",
    "events:write": "Record message events (email/SMS delivery events from integrations)",
    "ai:use": "Use the AI bridge: drafts, chat, analysis (applying it also needs leads:write)",
    "calls:read": "Read call requests and their event logs",
    "calls:write": "Submit and cancel call requests",
    "pipeline:write": "Edit pipeline stages",
    "analytics:read": "Analytics and the dashboard within the role's row scope",
    "reports:read": "Build and preview reports (exporting and scheduling also need leads:export)",
    "users:read": "Read the member list and teams",
    "admin:users": "Create, invite, change and deactivate members; teams",
    "admin:roles": "Create, change and delete custom roles",
    "admin:api_keys": "Create and revoke API keys",
    "admin:audit": "Read the audit log",
    "admin:settings": (
        "Organisation settings, SLA policies, assignment rules, custom fields, jobs and emails; "
        "every report schedule of the organisation"
    ),
}
