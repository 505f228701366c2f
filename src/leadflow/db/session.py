"""The request-scoped session: one per request, committed at the boundary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from leadflow.db.engine import Database, transactions_that, unit_of_work

# Safe methods only read; their transactions need not queue for SQLite's write lock.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TransactionIntentMiddleware:
    """Requests with a safe method run read-only transactions; every other one may write."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Mark the request's transactions by its method."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with transactions_that(write=scope.get("method") not in _READ_METHODS):
            await self.app(scope, receive, send)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session inside a unit of work."""
    db: Database = request.app.state.database
    async with db.sessionmaker() as session, unit_of_work(session):
        yield session


async def get_session_factory(request: Request) -> Callable[[], AsyncSession]:
    """A factory for sessions that outlive the request's (streamed responses)."""
    db: Database = request.app.state.database
    return db.sessionmaker


SessionFactoryDep = Annotated[Callable[[], AsyncSession], Depends(get_session_factory)]

# "function" scope: commit happens before the response is sent, so a failed commit is a 500.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
