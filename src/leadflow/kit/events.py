"""In-transaction domain events: a publisher announces a change, subscribers react to it.

A domain publishes an event after it has written a change and before its caller commits;
every subscriber runs in the same session, so a subscriber's writes commit or roll back with
the change (anything external — email, webhooks — goes through the outbox as usual). This lets
`sla` react to `lead.assigned` without `leads` importing `sla`: the dependency points from the
subscriber to the publisher, never back.

Subscribers register when their module is imported; `leadflow.wiring` imports them all and
then calls `wired()`. Publishing before that raises, so a process that forgot the wiring
fails loudly instead of silently skipping SLA clocks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession


class Event:
    """Base of every domain event; `name` is its published identifier (`lead.created`)."""

    name: ClassVar[str]


E = TypeVar("E", bound=Event)
Handler = Callable[[AsyncSession, Any], Awaitable[None]]

_subscribers: dict[type[Event], list[tuple[int, Handler]]] = defaultdict(list)
_wired = False


def subscribe(
    event_type: type[E], *, order: int = 100
) -> Callable[[Callable[[AsyncSession, E], Awaitable[None]]], Any]:
    """Decorator: run the handler for every published `event_type`. Handlers run by `order`
    (then by registration), so one that needs another's writes says so instead of relying on
    import order (an SLA clock starts before the assignee's message names its deadline)."""

    def register(handler: Callable[[AsyncSession, E], Awaitable[None]]) -> Any:
        found = _subscribers[event_type]
        if all(h is not handler for _, h in found):
            found.append((order, handler))
            found.sort(key=lambda item: item[0])  # stable: equal orders keep registration order
        return handler

    return register


def unsubscribe(event_type: type[Event], handler: Handler) -> None:
    """Remove a handler (tests that listen for a while)."""
    found = _subscribers.get(event_type, [])
    found[:] = [(o, h) for o, h in found if h is not handler]


def subscribers(event_type: type[Event]) -> list[Handler]:
    """The handlers registered for `event_type` (a copy)."""
    return [h for _, h in _subscribers.get(event_type, ())]


def wired() -> None:
    """Mark the process as wired: every subscriber module has been imported."""
    global _wired
    _wired = True


def require_wired() -> None:
    """Raise unless `leadflow.wiring` has been imported in this process."""
    if not _wired:
        raise RuntimeError("import leadflow.wiring before publishing events or running jobs")


async def publish(session: AsyncSession, event: Event) -> None:
    """Run every subscriber of the event now, in the caller's transaction."""
    require_wired()
    for _, handler in list(_subscribers.get(type(event), ())):
        await handler(session, event)
