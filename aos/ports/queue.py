"""The events queue and its dead-letter queue.

A message on ``aos-events`` is one JSON envelope (``QueueMessage``): an event and where it goes,
either one agent or every subscriber of the event's type. Messages are plain JSON text (host.json
sets the queue extension's ``messageEncoding`` to ``none``), so they are readable in Storage
Explorer and the 64 KB message limit applies to the JSON itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    pass

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

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the events queue cannot be reached (for health checks)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
