"""Who may hand out which power: nobody grants more than they hold."""

from __future__ import annotations

from collections.abc import Iterable

from leadflow.authz.actor import Actor
from leadflow.authz.errors import PrivilegeEscalation
from leadflow.authz.permissions import RowScope

ADMIN_ROLE = "admin"
_BREADTH = {RowScope.OWN: 0, RowScope.TEAM: 1, RowScope.ORG: 2}


def narrower_scope(a: RowScope, b: RowScope) -> RowScope:
    """The narrower of two row scopes."""
    return a if _BREADTH[a] <= _BREADTH[b] else b


def _wider_scope(scope: str, than: RowScope) -> bool:
    try:
        return _BREADTH[RowScope(scope)] > _BREADTH[than]
    except ValueError:
        return True


def exceeds(actor: Actor, permissions: Iterable[str], row_scope: str) -> list[str]:
    """What of `permissions` / `row_scope` the actor does not hold (empty: nothing)."""
    beyond = sorted(set(permissions) - actor.permissions)
    if _wider_scope(row_scope, actor.row_scope):
        beyond.append(f"row_scope:{row_scope}")
    return beyond


def ensure_holds(
    actor: Actor,
    *,
    role_name: str,
    permissions: Iterable[str],
    row_scope: str,
    what: str = "grant",
) -> None:
    """403 unless the actor holds every permission and at least the row scope of a role.

    Used both to grant a role (or build one) and to change a user or role holding it.
    The `admin` role is handled only by an admin in person (not by a custom role that happens
    to hold every permission, nor by an API key).
    """
    if role_name == ADMIN_ROLE and (actor.role != ADMIN_ROLE or actor.api_key_id is not None):
        raise PrivilegeEscalation(f"Only an admin can {what} the admin role")
    beyond = exceeds(actor, permissions, row_scope)
    if beyond:
        raise PrivilegeEscalation(
            f"You cannot {what} what you do not hold: {', '.join(beyond)}", beyond=beyond
        )


def ensure_may_set_teams(actor: Actor) -> None:
    """403 unless the actor sees the whole organisation: a team decides whose leads a
    team-scoped role sees, so placing people in teams would let a narrower actor widen scopes."""
    if actor.row_scope is not RowScope.ORG:
        raise PrivilegeEscalation("Only a user with organisation-wide scope can set teams")
