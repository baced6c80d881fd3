"""The events queue and its dead-letter queue.

A message on ``aos-events`` is one JSON envelope (``QueueMessage``): an event and where it goes,
either one agent or every subscriber of the event's type. Messages are plain JSON text (host.json
sets the queue extension's ``messageEncoding`` to ``none``), so they are readable in Storage
Explorer and the 64 KB message limit applies to the JSON itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Literal

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aos.errors import StorageError
from aos.models import Event

if TYPE_CHECKING:
    from azure.storage.queue.aio import QueueClient

__all__ = ["MAX_MESSAGE_BYTES", "AzureEventQueue", "EventQueue", "QueueMessage"]

MAX_MESSAGE_BYTES = 64 * 1024
"""Azure Queue Storage's limit for one message."""


class QueueMessage(BaseModel):
    """The envelope on the events queue. ``target`` ``agent`` needs ``event.agent_id``."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    target: Literal["agent", "subscribers"]
    event: Event

    @model_validator(mode="after")
    def _addressed(self) -> QueueMessage:
        if self.target == "agent" and self.event.agent_id is None:
            raise ValueError("an event for one agent needs event.agent_id")
        return self


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


class AzureEventQueue(EventQueue):
    def __init__(self, events: QueueClient, deadletter: QueueClient) -> None:
        self._events = events
        self._deadletter = deadletter
        self._ready: set[str] = set()

    async def send(self, *, message: str) -> None:
        await self._send(self._events, message)

    async def dead_letter(self, *, letter: DeadLetter) -> None:
        await self._send(self._deadletter, letter.model_dump_json())

    async def ping(self) -> None:
        await self._ensure(self._events)
        await self._events.get_queue_properties()

    async def close(self) -> None:
        await self._events.close()
        await self._deadletter.close()

    async def _ensure(self, client: QueueClient) -> None:
        if client.queue_name not in self._ready:
            with suppress(ResourceExistsError):
                await client.create_queue()
            self._ready.add(client.queue_name)

    async def _send(self, client: QueueClient, text: str) -> None:
        try:
            await self._ensure(client)
            await client.send_message(text)
        except ResourceNotFoundError:
            self._ready.discard(client.queue_name)  # deleted under us: create it next time
            raise StorageError(f"Queue {client.queue_name!r} does not exist") from None
        except AzureError as exc:
            raise StorageError(f"Queue {client.queue_name!r} unavailable: {exc}") from exc
