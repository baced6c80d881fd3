"""Port: the events queue and its dead-letter queue (``EventQueue``), and what a dead letter holds.

The message format itself (``QueueMessage``, size checks, broadcast splitting) is domain code in
``aos.domain.messages``; the Azure Storage queue adapter is ``aos.adapters.azure.queues``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["DeadLetter", "EventQueue"]


class DeadLetter(BaseModel):
    """What lands on the dead-letter queue: why, and the original message untouched."""

    reason: str
    errors: list[dict[str, Any]] = Field(default_factory=list)
    original: str
    message_id: str | None = None
    dequeue_count: int | None = None
    dead_lettered_at: str


class EventQueue(ABC):
    """Port for sending to the events queue and its dead-letter queue."""

    @abstractmethod
    async def send(self, *, message: str) -> None: ...

    @abstractmethod
    async def dead_letter(self, *, letter: DeadLetter) -> None: ...

    async def flush(self) -> None:  # noqa: B027 - optional hook
        """Make sure every message ``send`` accepted so far is on the queue now, before waiting
        for its effect inside the same invocation. An adapter that holds sends back for the
        invocation's queue output binding (``aos.adapters.azure.queues``: the binding is written
        only when the function returns) sends them directly; the others have nothing to do."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the events queue cannot be reached (for health checks)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
