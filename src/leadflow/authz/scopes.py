"""Row-scope clauses: own / team / org, built once and reused by every repository."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true

from leadflow.authz.actor import Actor
from leadflow.authz.permissions import RowScope
from leadflow.models.user import User


def team_member_ids(actor: Actor) -> Any:
    """Subquery of the ids of users in the actor's team."""
    return select(User.id).where(
        User.organization_id == actor.organization_id, User.team_id == actor.team_id
    )


def row_scope_clause(actor: Actor, owner_columns: Sequence[Any]) -> ColumnElement[bool]:
    """WHERE clause limiting rows to the actor's scope.

    `owner_columns` are the user-id columns that make a row "theirs" (assignee, creator…).
    The organisation filter is applied separately by the repository.
    """
    if actor.row_scope is RowScope.ORG:
        return true()
    if actor.user_id is None:
        return false()
    own = [col == actor.user_id for col in owner_columns]
    if actor.row_scope is RowScope.TEAM and actor.team_id is not None:
        members = team_member_ids(actor)
        return or_(*own, *(col.in_(members) for col in owner_columns))
    return or_(*own)
