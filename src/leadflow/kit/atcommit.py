"""Things to do once a session's transaction commits, aware of savepoints.

SQLAlchemy's `after_commit` and `after_rollback` session events also fire when a savepoint
(`begin_nested`) is released or rolled back. Handing jobs or wake-ups over then would hand
them over before the data they announce is committed, and dropping them then would lose
those queued before the savepoint. `AtCommit` keeps each value with the savepoint it was
queued in: a release moves it to the enclosing transaction, a savepoint's rollback drops only
its own, and the outermost commit hands everything over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

T = TypeVar("T")


class AtCommit(Generic[T]):
    """Values queued in a session, handed to `deliver` when its outermost transaction
    commits (in the order queued, each once), dropped when it rolls back."""

    def __init__(self, key: str, deliver: Callable[[list[T]], None]) -> None:
        self.key = key
        self.deliver = deliver
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_rollback", self._after_rollback)
        event.listen(Session, "after_transaction_end", self._after_transaction_end)

    def add(self, session: AsyncSession, value: T, *, once: bool = False) -> None:
        """Queue `value` for the commit (`once`: unless it is queued already)."""
        sync = session.sync_session
        pending: list[list[Any]] = sync.info.setdefault(self.key, [])
        if once and any(v == value for v, _ in pending):
            return
        pending.append([value, sync.get_nested_transaction()])

    def _after_commit(self, session: Session) -> None:
        nested = session.get_nested_transaction()
        if nested is not None:
            # A savepoint released: its values now belong to the savepoint around it, if any.
            outer: SessionTransaction | None = nested.parent
            while outer is not None and not outer.nested:
                outer = outer.parent
            for item in session.info.get(self.key, ()):
                if item[1] is nested:
                    item[1] = outer
            return
        pending = session.info.pop(self.key, None)
        if pending:
            self.deliver([v for v, _ in pending])

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        # The outermost transaction ended (committed: handed over already; rolled back, or
        # the session closed without either): nothing rides along into the next one.
        if transaction.parent is None:
            session.info.pop(self.key, None)

    def _after_rollback(self, session: Session) -> None:
        # The outermost transaction's rollback ends it: `_after_transaction_end` drops all.
        nested = session.get_nested_transaction()
        pending = session.info.get(self.key)
        if nested is not None and pending:
            pending[:] = [item for item in pending if not _within(item[1], nested)]


def _within(tx: SessionTransaction | None, nested: SessionTransaction) -> bool:
    """Whether `tx` is `nested` or a savepoint inside it (closed with it, unreleased)."""
    while tx is not None:
        if tx is nested:
            return True
        tx = tx.parent
    return False
