"""Events an HTTP invocation sends, handed to its queue output binding instead of sent directly.

The Functions host writes a function's queue output binding after the function returns and before
the HTTP response goes out, so a 202 still means the event is on the queue. What the binding adds:
the queues extension then tells its own listener for that queue to poll at once (its
``SharedQueueWatcher`` calls ``QueueListener.Notify``). A message sent with the storage SDK waits
for the listener's next poll instead, which backs off to ``maxPollingInterval`` (host.json: 2 s)
while the queue is idle: an agent woken by an HTTP event would wait up to that long.

``AzureEventQueue.send`` appends to the outbox of the invocation it runs in (a context variable,
so concurrent invocations keep their own); outside one, or after it ended (a task the request left
running), it sends directly. An invocation that waits for an event's effect before it returns (the
MCP tool ``ask_agent`` waits for the turn its message starts) calls ``EventQueue.flush`` first,
which sends what the outbox holds directly: the binding would write it only after the wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["Outbox", "current_outbox", "invocation_outbox"]


@dataclass
class Outbox:
    """The events one invocation sent, in order, while it is running."""

    messages: list[str] = field(default_factory=list)
    open: bool = True


_CURRENT: ContextVar[Outbox | None] = ContextVar("aos_invocation_outbox", default=None)


@contextmanager
def invocation_outbox() -> Iterator[Outbox]:
    """Collect the events sent inside the block; the caller hands ``messages`` to the binding."""
    outbox = Outbox()
    token = _CURRENT.set(outbox)
    try:
        yield outbox
    finally:
        outbox.open = False
        _CURRENT.reset(token)


def current_outbox() -> Outbox | None:
    """The running invocation's outbox, or None (send directly)."""
    outbox = _CURRENT.get()
    return outbox if outbox is not None and outbox.open else None
