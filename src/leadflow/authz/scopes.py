"""Row-scope clauses: own / team / org, built once and reused by every repository."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, false, or_, select, true

from leadflow.authz.actor import Actor
from leadflow.authz.permissions import RowScope
from leadflow.models.user import User

ScopeKind = Literal["org", "team", "own", "nobody"]


def scope_kind(actor: Actor) -> ScopeKind:
    """Which rows the actor sees: the whole organisation, their team's, their own, or none."""
    if actor.row_scope is RowScope.ORG:
        return "org"
    if actor.user_id is None:
        return "nobody"
    if actor.row_scope is RowScope.TEAM and actor.team_id is not None:
        return "team"
    return "own"


def _team_members(org: Any, team: Any) -> Any:
    return select(User.id).where(User.organization_id == org, User.team_id == team)


def scope_clause(
    kind: ScopeKind, owner_columns: Sequence[Any], *, user: Any, team: Any, org: Any
) -> ColumnElement[bool]:
    """The row-scope clause of `kind`; `user`, `team` and `org` are values or bind parameters.

    Bind parameters let a repository build the clause once per kind and reuse it for every
    actor of that kind.
    """
    if kind == "org":
        return true()
    if kind == "nobody":
        return false()
    own = [col == user for col in owner_columns]
    if kind == "team":
        members = _team_members(org, team)
        return or_(*own, *(col.in_(members) for col in owner_columns))
    return or_(*own)


def row_scope_clause(actor: Actor, owner_columns: Sequence[Any]) -> ColumnElement[bool]:
    """WHERE clause limiting rows to the actor's scope.

    `owner_columns` are the user-id columns that make a row "theirs" (assignee, creator…).
    The organisation filter is applied separately by the repository.
    """
    return scope_clause(
        scope_kind(actor),
        owner_columns,
        user=actor.user_id,
        team=actor.team_id,
        org=actor.organization_id,
    )
