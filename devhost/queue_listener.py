"""Poll a Storage queue for a queue-triggered function, as the Functions host's queue trigger does.

Behaviour follows the documented queue trigger (host.json `extensions.queues`): fetch up to
`batchSize` messages, fetch again once no more than `newBatchThreshold` are still running, back off
when the queue is empty up to `maxPollingInterval`, delete a message only after its function
succeeded, on failure make it visible again after `visibilityTimeout`, and after `maxDequeueCount`
failed attempts move it to `<queue>-poison`. While a function runs, its message stays leased (the
lease is renewed), so a crashed host's messages come back after one lease, not after ten minutes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import QueueMessage as StorageMessage
from azure.storage.queue.aio import QueueClient

from devhost.app_loader import FunctionSpec
from devhost.config import QueueOptions
from devhost.storage_clients import client_options

__all__ = ["QueueListener", "queue_client"]

log = logging.getLogger("devhost.queues")
MIN_POLL = 0.1
Invoke = Callable[[FunctionSpec, dict[str, Any]], Awaitable[Any]]


def queue_client(connection_string: str, name: str) -> QueueClient:
    """A raw-text queue client (no encode policy: the listener handles `messageEncoding`)."""
    return QueueClient.from_connection_string(
        connection_string, name, **client_options(retry_total=3, retry_backoff_factor=0.2)
    )


class MessageDecodeError(ValueError):
    """A message is not valid for the configured `messageEncoding`."""


class QueueListener:
    """One polling loop for one queue-triggered function."""

    def __init__(
        self,
        spec: FunctionSpec,
        connection_string: str,
        queue_name: str,
        options: QueueOptions,
        invoke: Invoke,
        *,
        lease_seconds: int = 30,
    ) -> None:
        self.spec = spec
        self.queue_name = queue_name
        self.connection_string = connection_string
        self.options = options
        self._invoke = invoke
        self._lease = max(1, lease_seconds)
        self._queue = queue_client(connection_string, queue_name)
        self._poison = queue_client(connection_string, f"{queue_name}-poison")
        self._stopping = asyncio.Event()
        self._enqueued = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.processed = 0
        self.poisoned = 0

    async def start(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._queue.create_queue()
        self._task = asyncio.create_task(self._run(), name=f"queue {self.queue_name}")

    def notify(self) -> None:
        """A function of this host added a message to the queue through an output binding: end
        the current wait and poll now. The queues extension does the same (its
        ``SharedQueueWatcher`` calls ``QueueListener.Notify`` whenever an output binding adds a
        message to a queue a listener of the same host polls), so a message sent that way is
        picked up at once instead of after the back-off (up to ``maxPollingInterval``). A message
        sent with the storage SDK waits for the next poll, as in Azure."""
        self._enqueued.set()

    async def stop(self) -> None:
        """Stop polling and let running invocations finish (their messages then get deleted)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        await asyncio.gather(*self._inflight, return_exceptions=True)
        await self._queue.close()
        await self._poison.close()

    async def _run(self) -> None:
        interval = MIN_POLL
        max_interval = max(MIN_POLL, self.options.max_polling_interval.total_seconds())
        batch = max(1, min(self.options.batch_size, 32))
        idle_wait = False  # did the last wait run out its interval with nothing finishing?
        while not self._stopping.is_set():
            received = 0
            if len(self._inflight) <= self.options.threshold:
                try:
                    received = await self._receive(batch)
                except AzureError as exc:
                    log.warning("queue %s: receive failed: %s", self.queue_name, exc)
            if received:
                interval = 0.0
            elif idle_wait or interval == 0.0:
                # Back off only after an idle wait: a poll prompted by a finished message says
                # nothing about how long the queue has been empty.
                interval = min(max(interval * 2, MIN_POLL), max_interval)
            if received and len(self._inflight) <= self.options.threshold:
                continue
            if self._enqueued.is_set():  # a message was added while this loop was polling
                self._enqueued.clear()
                continue
            waiters: set[asyncio.Future[Any]] = {
                asyncio.ensure_future(self._stopping.wait()),
                asyncio.ensure_future(self._enqueued.wait()),
            }
            waiters |= set(self._inflight)
            done, _ = await asyncio.wait(
                waiters, timeout=interval or None, return_when=asyncio.FIRST_COMPLETED
            )
            self._enqueued.clear()
            idle_wait = not done
            for waiter in waiters:
                if waiter not in self._inflight and not waiter.done():
                    waiter.cancel()

    async def _receive(self, count: int) -> int:
        messages = [
            m
            async for m in self._queue.receive_messages(
                messages_per_page=count, max_messages=count, visibility_timeout=self._lease
            )
        ]
        for message in messages:
            task = asyncio.create_task(self._process(message))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return len(messages)

    def _argument(self, message: StorageMessage, body: bytes) -> Any:
        name = str(self.spec.trigger["name"])
        try:
            annotation = inspect.signature(self.spec.func).parameters[name].annotation
        except (KeyError, TypeError, ValueError):
            annotation = inspect.Parameter.empty
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        if text == "str":
            return body.decode()
        if text == "bytes":
            return body
        return FunctionQueueMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )

    def _decode(self, content: Any) -> bytes:
        raw = content.encode() if isinstance(content, str) else bytes(content or b"")
        if self.options.message_encoding != "base64":
            return raw
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MessageDecodeError("message is not valid base64 (messageEncoding)") from exc

    async def _process(self, message: StorageMessage) -> None:
        receipt = [message.pop_receipt]
        if (message.dequeue_count or 0) > self.options.max_dequeue_count:
            await self._to_poison(message, receipt[0])
            return
        renewer = asyncio.create_task(self._renew(message, receipt))
        try:
            body = self._decode(message.content)
            await self._invoke(
                self.spec, {str(self.spec.trigger["name"]): self._argument(message, body)}
            )
        except Exception:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            log.exception(
                "%s failed on message %s (attempt %s)",
                self.spec.name,
                message.id,
                message.dequeue_count,
            )
            await self._failed(message, receipt[0])
            return
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)
        self.processed += 1
        try:
            await self._queue.delete_message(message.id, receipt[0])
        except ResourceNotFoundError:
            log.warning("queue %s: message %s was gone before delete", self.queue_name, message.id)

    async def _renew(self, message: StorageMessage, receipt: list[str | None]) -> None:
        while True:
            await asyncio.sleep(self._lease / 2)
            updated = await self._queue.update_message(
                message.id, receipt[0], visibility_timeout=self._lease
            )
            receipt[0] = updated.pop_receipt

    async def _failed(self, message: StorageMessage, receipt: str | None) -> None:
        try:
            if (message.dequeue_count or 0) >= self.options.max_dequeue_count:
                await self._to_poison(message, receipt)
            else:
                await self._queue.update_message(
                    message.id,
                    receipt,
                    visibility_timeout=int(self.options.visibility_timeout.total_seconds()),
                )
        except AzureError as exc:
            log.warning(
                "queue %s: could not release message %s: %s", self.queue_name, message.id, exc
            )

    async def _to_poison(self, message: StorageMessage, receipt: str | None) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._poison.create_queue()
        await self._poison.send_message(message.content)
        await self._queue.delete_message(message.id, receipt)
        self.poisoned += 1
        log.error(
            "%s: message %s moved to %s-poison after %s attempts",
            self.spec.name,
            message.id,
            self.queue_name,
            message.dequeue_count,
        )
