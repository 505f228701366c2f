"""Row scopes (own / team / org) computed from the actor, ready for every repository."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.service import actor_for_user
from leadflow.authz.scopes import row_scope_clause
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
