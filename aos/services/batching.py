"""Group commit for deliveries to one agent: events that arrive together share a signal.

Each queued event is one function invocation, and on its own it costs a receipt claim and a signal
(an HTTP call to the Durable extension, which stores a message for the entity). When an agent is
busy -- a burst of events to one agent, the common case for a hot agent -- those invocations run
side by side in the same worker. ``DeliveryBatcher`` lets them meet: per agent, at most one batch
is being claimed and signalled; the deliveries that arrive meanwhile wait in the next batch, which
goes as soon as that signal is sent. A batch claims its receipts together (one table transaction
when it is large enough to pay for itself) and sends *one* ``handle_events`` operation with the
events in arrival order. An agent that is not busy gets a batch of one at once, so nothing waits
for a timer and latency at low rates is unchanged.

The receipts are confirmed (marked ``signalled``) by the entity, in the write that archives the
events it applied, not here: a delivery that dies after its signal was stored (the host killed)
left them claimed, and its message, redelivered after its lease, signalled all of them again,
long after the entity's window of recent ids could recognise them (a kill-and-restart test saw a
whole batch of 32 applied twice). Each event keeps its own receipt, claimed with its own queue
message id. If the batch fails, every delivery in it fails and its message comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aos.domain.models import Event
from aos.ports.entity_client import EntityClient
from aos.ports.index import IndexEntry
from aos.ports.receipts import Claim, DeliveryReceipts

__all__ = ["DeliveryBatcher"]

logger = logging.getLogger("aos.services.batching")

MAX_EVENTS = 32
"""The most events one ``handle_events`` operation carries."""
MAX_CHARS = 40_000
"""The most characters of event JSON one operation carries. The Durable extension moves larger
messages to blob storage, which costs more than two signals; one large event goes on its own."""


@dataclass(slots=True)
class _Delivery:
    entry: IndexEntry
    event: Event
    payload: dict[str, Any]
    message_id: str
    size: int
    entities: EntityClient
    done: asyncio.Future[bool]


@dataclass(slots=True)
class _Batch:
    generation: str
    items: list[_Delivery] = field(default_factory=list)
    size: int = 0

    def takes(self, item: _Delivery) -> bool:
        return (
            item.entry.generation == self.generation
            and len(self.items) < MAX_EVENTS
            and self.size + item.size <= MAX_CHARS
        )


class DeliveryBatcher:
    """One per worker and event loop (``AppRuntime.batcher``); shared by every delivery."""

    def __init__(self, receipts: DeliveryReceipts) -> None:
        self._receipts = receipts
        self._waiting: dict[str, deque[_Batch]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references
        self.operations_sent = 0
        """Signals sent: fewer than events delivered when batches formed (for tests, benches)."""

    async def deliver(
        self,
        *,
        entities: EntityClient,
        entry: IndexEntry,
        event: Event,
        payload: dict[str, Any],
        message_id: str,
        size: int,
    ) -> bool:
        """Claim and signal ``event`` for ``entry``'s agent, with whatever else arrives for that
        agent meanwhile; ``False`` if the agent had the event already."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        item = _Delivery(entry, event, payload, message_id, size, entities, done)
        agent_id = entry.agent_id
        batches = self._waiting.get(agent_id)
        if batches is None:
            batches = self._waiting[agent_id] = deque()
            self._track(asyncio.get_running_loop().create_task(self._drain(agent_id, batches)))
        if not batches or not batches[-1].takes(item):
            batches.append(_Batch(entry.generation))
        batch = batches[-1]
        batch.items.append(item)
        batch.size += size
        return await done

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, agent_id: str, batches: deque[_Batch]) -> None:
        """Send the agent's batches in order until none is waiting: the signals must go one
        after another, so that the agent gets its events in order."""
        try:
            while batches:
                batch = batches.popleft()
                try:
                    claims = await self._claim_and_signal(agent_id, batch)
                except Exception as exc:
                    _fail(batch, exc)
                    continue
                for item, claim in zip(batch.items, claims, strict=True):
                    if not item.done.done():
                        item.done.set_result(claim.should_signal)
        finally:
            # no await since the loop's last check: a delivery arriving now starts a new drain
            del self._waiting[agent_id]

    async def _claim_and_signal(self, agent_id: str, batch: _Batch) -> list[Claim]:
        """Claim the batch's receipts, then signal its new events in one ``handle_events``
        operation (even one event): the entity confirms each receipt in the write that archives
        the event (``aos.adapters.azure.history``), so no receipt is left saying less than what
        the agent applied, whenever this process dies."""
        items = batch.items
        claims = await self._receipts.claim_many(
            agent_id=agent_id,
            claims=[(item.event.event_id, item.message_id) for item in items],
            generation=batch.generation,
        )
        chosen = [item for item, claim in zip(items, claims, strict=True) if claim.should_signal]
        if chosen:
            await chosen[0].entities.signal(
                agent_id=agent_id,
                operation="handle_events",
                value=[item.payload for item in chosen],
            )
            self.operations_sent += 1
            logger.debug("agent %s: %d events in one operation", agent_id, len(chosen))
        return claims


def _fail(batch: _Batch, exc: Exception) -> None:
    """Every delivery of the batch fails (its message comes back; the receipts then say which
    events were signalled already)."""
    for item in batch.items:
        if not item.done.done():
            item.done.set_exception(exc)
