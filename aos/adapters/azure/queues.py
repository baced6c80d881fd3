"""The events queue and its dead-letter queue on Azure Queue Storage (``AzureEventQueue``).

Queues are created on first use (Bicep creates them in Azure; locally nobody does). Messages are
plain JSON text (host.json sets the queue extension's ``messageEncoding`` to ``none``)."""

from __future__ import annotations

import threading
from contextlib import suppress
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from aos.adapters.azure.tables import storage_error
from aos.adapters.outbox import current_outbox
from aos.errors import StorageError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from azure.storage.queue import QueueClient as SyncQueueClient
    from azure.storage.queue.aio import QueueClient
from aos.ports.queue import DeadLetter, EventQueue

__all__ = ["AzureEventQueue", "QueueEffectSender"]


class AzureEventQueue(EventQueue):
    def __init__(self, events: QueueClient, deadletter: QueueClient) -> None:
        self._events = events
        self._deadletter = deadletter
        self._ready: set[str] = set()

    async def send(self, *, message: str) -> None:
        """To the running HTTP invocation's queue output binding if there is one (see
        ``aos.adapters.outbox``), else straight to the queue."""
        outbox = current_outbox()
        if outbox is not None:
            outbox.messages.append(message)
            return
        await self._send(self._events, message)

    async def flush(self) -> None:
        """Send what the running invocation's outbox holds straight to the queue (the binding
        writes only what is left: a message that failed here and those after it)."""
        outbox = current_outbox()
        while outbox is not None and outbox.messages:
            await self._send(self._events, outbox.messages[0])
            del outbox.messages[0]

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


class QueueEffectSender:
    """The entity function's way out (``aos.domain.effects.EffectSender``): a batch's sends and
    publishes as messages on the events queue, synchronously, one client per worker thread."""

    def __init__(self, make_client: Callable[[], SyncQueueClient]) -> None:
        self._make_client = make_client
        self._local = threading.local()

    def send(self, texts: Sequence[str]) -> None:
        client = self._client()
        try:
            for text in texts:
                client.send_message(text)
        except ResourceNotFoundError as exc:  # deleted under us: create it on the retry
            self._local.client = None
            raise StorageError(f"Queue {client.queue_name!r} does not exist") from exc
        except AzureError as exc:
            raise storage_error(exc, f"Sending {len(texts)} events") from exc

    def _client(self) -> SyncQueueClient:
        client: SyncQueueClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._make_client()
            try:
                with suppress(ResourceExistsError):
                    client.create_queue()
            except AzureError as exc:
                raise storage_error(exc, f"Queue {client.queue_name!r}") from exc
            self._local.client = client
        return client

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
