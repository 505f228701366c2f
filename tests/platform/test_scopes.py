"""Row scopes (own / team / org) computed from the actor, ready for every repository."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.service import actor_for_user
from leadflow.authz.actor import Actor
from leadflow.authz.permissions import RowScope
from leadflow.authz.scopes import lead_scope_conditions, row_scope_clause
from leadflow.exceptions import Forbidden
from leadflow.kit.clock import utcnow
from leadflow.models.lead import Lead
from leadflow.models.user import User
from tests.fixtures.factories import Factory


async def test_row_scope_own_team_org(factory: Factory, session: AsyncSession) -> None:
    org = await factory.org()
    north, south = await factory.team(org), await factory.team(org)
    admin = await factory.user(org, "admin")
    manager = await factory.user(org, "manager", team=north)
    rep_n = await factory.user(org, "counselor", team=north)
    rep_s = await factory.user(org, "counselor", team=south)
    viewer = await factory.user(org, "viewer")
    everyone = {u.id for u in (admin, manager, rep_n, rep_s, viewer)}

    async def visible(user: User) -> set[object]:
        actor = actor_for_user(user)
        rows = await session.scalars(
            select(User.id).where(
                User.organization_id == org.id, row_scope_clause(actor, [User.id])
            )
        )
        return set(rows)

    assert await visible(admin) == everyone
    assert await visible(viewer) == everyone
    assert await visible(manager) == {manager.id, rep_n.id}
    assert await visible(rep_n) == {rep_n.id}


def test_require_raises_the_missing_permission_error() -> None:
    actor = Actor(
        organization_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        role="viewer",
        permissions=frozenset({"leads:read"}),
        row_scope=RowScope.ORG,
    )
    actor.require("leads:read")  # held: nothing happens
    with pytest.raises(Forbidden) as caught:
        actor.require("leads:delete")
    error = caught.value
    assert (error.status, error.code) == (403, "missing_permission")
    assert error.detail == "Missing permission 'leads:delete'"
    assert error.extra == {"permission": "leads:delete"}


async def test_missing_permission_answer_is_unchanged(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """A service check answers as before: 403 problem+json naming the permission."""
    org = await factory.org()
    rep = await factory.member(org, "counselor")  # may write leads, not delete them
    lead = await factory.lead(org, assignee_id=rep.user.id)
    r = await client.post(
        "/api/v1/leads/bulk",
        headers=rep.headers,
        json={"ids": [str(lead.id)], "action": "delete"},
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "missing_permission"
    assert body["permission"] == "leads:delete"
    assert body["detail"] == "Missing permission 'leads:delete'"


async def test_lead_scope_lives_in_authz(factory: Factory, session: AsyncSession) -> None:
    """authz's lead scope: organisation, not deleted, assignee or creator for `own`."""
    org, other = await factory.org(), await factory.org()
    rep = await factory.user(org, "counselor")
    mine = await factory.lead(org, assignee_id=rep.id)
    await factory.lead(org)  # someone else's
    await factory.lead(org, assignee_id=rep.id, deleted_at=utcnow())
    await factory.lead(other, assignee_id=rep.id)
    rows = await session.scalars(select(Lead.id).where(*lead_scope_conditions(actor_for_user(rep))))
    assert list(rows) == [mine.id]
