"""Row-scope clauses: own / team / org, built once and reused by every repository.

The one place that decides which rows an actor sees: repositories combine these with their
own filters, they do not build scope clauses themselves (tests/platform/test_layers.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, false, or_, select, true

from leadflow.authz.actor import Actor
from leadflow.authz.permissions import RowScope
from leadflow.models.call_request import CallRequest
from leadflow.models.lead import Lead
from leadflow.models.task import Task
from leadflow.models.user import User

ScopeKind = Literal["org", "team", "own", "nobody"]
# A lead is "theirs" for a user who is its assignee or its creator.
LEAD_OWNERS = (Lead.assignee_id, Lead.created_by)


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


def lead_scope_conditions(actor: Actor) -> list[ColumnElement[bool]]:
    """Live leads of the actor's organisation within their row scope (assignee or creator)."""
    return [
        Lead.organization_id == actor.organization_id,
        Lead.deleted_at.is_(None),
        row_scope_clause(actor, LEAD_OWNERS),
    ]


def task_scope_conditions(actor: Actor) -> list[ColumnElement[bool]]:
    """Own tasks, tasks of the actor's scope, and tasks on leads in the actor's scope."""
    conds: list[ColumnElement[bool]] = [Task.organization_id == actor.organization_id]
    if actor.row_scope is not RowScope.ORG:
        leads_in_scope = select(Lead.id).where(*lead_scope_conditions(actor))
        conds.append(
            or_(
                row_scope_clause(actor, [Task.assignee_id, Task.created_by]),
                Task.lead_id.in_(leads_in_scope),
            )
        )
    return conds


def call_scope_conditions(actor: Actor) -> list[ColumnElement[bool]]:
    """The actor's organisation and row scope: own requests, the team's, or the org's."""
    return [
        CallRequest.organization_id == actor.organization_id,
        row_scope_clause(actor, [CallRequest.requested_by]),
    ]
