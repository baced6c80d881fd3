"""The events queue and its dead-letter queue on Azure Queue Storage (``AzureEventQueue``).

Queues are created on first use (Bicep creates them in Azure; locally nobody does). Messages are
plain JSON text (host.json sets the queue extension's ``messageEncoding`` to ``none``)."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from aos.adapters.azure.tables import storage_error
from aos.errors import StorageError

if TYPE_CHECKING:
    from azure.storage.queue.aio import QueueClient
from aos.ports.queue import DeadLetter, EventQueue

__all__ = ["AzureEventQueue"]


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
            raise storage_error(exc, f"Queue {client.queue_name!r}") from exc
