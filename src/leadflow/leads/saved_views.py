"""Saved views of the lead list: per user, named, at most `MAX_PER_USER` each.

The stored query is the list's query string; the caller checks it with the list's filter on
save and on use, so a view never holds a filter the list (and the API) would refuse.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.exceptions import Forbidden, NotFound, ValidationFailed
from leadflow.models.saved_view import SavedView

MAX_PER_USER = 50
NAME_MAX = 100


def _owner(actor: Actor) -> uuid.UUID:
    # Views belong to a person; an API key has no list of its own.
    if actor.user_id is None:
        raise Forbidden("Saved views belong to a user")
    return actor.user_id


def _scope(actor: Actor) -> list[ColumnElement[bool]]:
    return [SavedView.organization_id == actor.organization_id, SavedView.user_id == _owner(actor)]


async def list_views(session: AsyncSession, actor: Actor) -> list[SavedView]:
    """The actor's own views, by name."""
    rows = await session.scalars(select(SavedView).where(*_scope(actor)).order_by(SavedView.name))
    return list(rows)


async def get_view(session: AsyncSession, actor: Actor, view_id: uuid.UUID) -> SavedView:
    """One of the actor's views; anyone else's is not found."""
    view = await session.scalar(select(SavedView).where(SavedView.id == view_id, *_scope(actor)))
    if view is None:
        raise NotFound("No such saved view")
    return view


async def create_view(session: AsyncSession, actor: Actor, name: str, query: str) -> SavedView:
    """Save `query` (already checked by the caller) under `name`, unique per user."""
    owner = _owner(actor)
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise ValidationFailed(f"A name of 1 to {NAME_MAX} characters", field="name")
    count = await session.scalar(select(func.count()).select_from(SavedView).where(*_scope(actor)))
    if (count or 0) >= MAX_PER_USER:
        raise ValidationFailed(f"At most {MAX_PER_USER} saved views", field="name")
    taken = await session.scalar(select(SavedView.id).where(*_scope(actor), SavedView.name == name))
    if taken is not None:
        raise ValidationFailed("You already have a view of that name", field="name")
    view = SavedView(organization_id=actor.organization_id, user_id=owner, name=name, query=query)
    try:
        # A savepoint: the same name saved at the same moment from another tab fails this
        # insert alone; the request's transaction stays the caller's to end.
        async with session.begin_nested():
            session.add(view)
    except IntegrityError:
        raise ValidationFailed("You already have a view of that name", field="name") from None
    return view


async def delete_view(session: AsyncSession, actor: Actor, view_id: uuid.UUID) -> None:
    """Delete one of the actor's views."""
    view = await get_view(session, actor, view_id)
    await session.delete(view)
    await session.flush()
