"""Run Durable entity operations: per entity one batch at a time, operations in arrival order.

This follows the Durable Functions entity contract: operations on one entity never run
concurrently, they run in the order they arrived, several are delivered to the function as one
batch, and the state the batch leaves is persisted before the next batch starts. The entity function
is called through the SDK's own entity handler with the batch JSON the Functions host sends, so the
app's entity code runs unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions._durable_functions import EntityContext

from devhost.app_loader import FunctionSpec
from devhost.entity_store import (
    MAX_SIGNALS_PER_COMMIT,
    EntityId,
    EntityStore,
    Signal,
    StoredState,
)
from devhost.errors import DevHostError, EntityStateTooLargeError

__all__ = ["EntityRuntime", "UnknownEntityError", "build_batch_request"]

log = logging.getLogger("devhost.entities")


class UnknownEntityError(DevHostError, LookupError):
    """No entity function is registered under that name."""


def build_batch_request(entity: EntityId, stored: StoredState, signals: list[Signal]) -> str:
    """The JSON the Functions host passes to an entity function for one batch.

    `input` is the client's request body as received: the client already encoded the operation
    input as a JSON string of JSON text, so it arrives here encoded twice, as the SDK expects.
    """
    return json.dumps(
        {
            "self": {"name": entity.name, "key": entity.key},
            "state": stored.state if stored.exists else None,
            "exists": stored.exists,
            "batch": [
                {"name": s.operation, "input": s.input, "signal": s.reply is None, "id": s.id}
                for s in signals
            ],
        }
    )


@dataclass
class _Entity:
    id: EntityId
    queue: deque[Signal] = field(default_factory=deque)
    stored: StoredState | None = None
    worker: asyncio.Task[None] | None = None
    failed_attempts: int = 0
    """Invocations of the current batch that raised (reset when a batch completes)."""


ReplySink = Callable[[dict[str, Any], str, dict[str, Any]], Awaitable[None]]
"""(reply address, request id, the operation's result entry) -> stored in the caller's inbox."""

BATCH_ATTEMPTS = 5
"""How often a batch whose invocation raised is run again before its signals are given up."""


class EntityRuntime:
    """Signals in, batches out. One asyncio task per busy entity; bounded overall concurrency."""

    def __init__(
        self,
        store: EntityStore,
        functions: Mapping[str, FunctionSpec],
        *,
        max_batch_size: int = 50,
        concurrency: int = 8,
    ) -> None:
        self._store = store
        self._functions = {name.lower(): spec for name, spec in functions.items()}
        self.max_batch_size = max(1, min(max_batch_size, MAX_SIGNALS_PER_COMMIT))
        self._slots = asyncio.Semaphore(concurrency)
        self._entities: dict[EntityId, _Entity] = {}
        self._pending = 0
        self._changed = asyncio.Condition()
        self._stopping = False
        self.batches_run = 0
        self.batch_observer: Callable[[str], None] | None = None  # tests: see each batch JSON
        self.reply_sink: ReplySink | None = None  # where results of orchestrations' calls go

    @property
    def pending(self) -> int:
        """Signals accepted but not yet applied."""
        return self._pending

    def has_entity(self, name: str) -> bool:
        return name.lower() in self._functions

    async def start(self) -> None:
        """Resume the signals a previous run accepted but did not apply."""
        for entity_id, signals in (await self._store.pending_signals()).items():
            entity = self._entity(entity_id)
            entity.queue.extend(signals)
            self._pending += len(signals)
            if signals:
                log.info("resuming %d pending signal(s) for %s", len(signals), entity_id)
            self._kick(entity)

    async def stop(self) -> None:
        """Finish the batches that are running; pending signals stay stored for the next start."""
        self._stopping = True
        workers = [e.worker for e in self._entities.values() if e.worker is not None]
        await asyncio.gather(*workers, return_exceptions=True)

    async def signal(self, name: str, key: str, operation: str, input_text: str | None) -> str:
        """Persist a signal, then queue it; returns once it is durable (the 202 point)."""
        signal = await self.stage(name, key, operation, input_text)
        assert signal is not None  # a fresh sequence number is never stored already
        self.release(name, key, signal)
        return signal.id

    async def stage(
        self,
        name: str,
        key: str,
        operation: str,
        input_text: str | None,
        *,
        signal_id: str | None = None,
        seq: str | None = None,
        reply: str | None = None,
    ) -> Signal | None:
        """Store a signal and queue it *held*: it runs only after `release` (or a restart).

        Orchestrations pass their own `seq`, fixed when the episode committed, so a message
        delivered again while it is still stored is not stored twice (None is returned); they
        release it only once their outbox row is gone, so a message is never delivered again
        after it has been applied. `reply` makes it a call whose result goes to `reply_sink`.
        """
        if not self.has_entity(name):
            raise UnknownEntityError(f"no entity function named {name!r}")
        entity = self._entity(EntityId.of(name, key))
        signal = self._store.new_signal(signal_id or str(uuid.uuid4()), operation, input_text)
        if seq is not None:
            signal.seq = seq
        signal.reply = reply
        entity.queue.append(signal)  # position = arrival order, even if writes finish out of order
        self._pending += 1
        try:
            await self._store.add_signal(entity.id, signal)
        except BaseException as exc:
            entity.queue.remove(signal)
            await self._settled(1)
            self._kick(entity)
            if isinstance(exc, ResourceExistsError):
                return None  # stored by an earlier delivery: that one stays queued
            raise
        return signal

    def release(self, name: str, key: str, signal: Signal) -> None:
        """Let a staged signal run (in its arrival position)."""
        signal.durable = True
        entity = self._entities.get(EntityId.of(name, key))
        if entity is not None:
            self._kick(entity)

    async def read(self, name: str, key: str) -> StoredState:
        """The last persisted state (operations still pending are not reflected, as in Azure)."""
        entity_id = EntityId.of(name, key)
        entity = self._entities.get(entity_id)
        if entity is not None and entity.stored is not None:
            return entity.stored
        return await self._store.load_state(entity_id)

    async def wait_idle(self) -> None:
        """Wait until every accepted signal has been applied (bound it with asyncio.timeout)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._pending == 0)

    def _entity(self, entity_id: EntityId) -> _Entity:
        entity = self._entities.get(entity_id)
        if entity is None:
            entity = self._entities[entity_id] = _Entity(entity_id)
        return entity

    def _kick(self, entity: _Entity) -> None:
        if self._stopping or entity.worker is not None:
            return
        if entity.queue and entity.queue[0].durable:
            entity.worker = asyncio.create_task(self._drain(entity), name=f"entity {entity.id}")

    async def _settled(self, count: int) -> None:
        async with self._changed:
            self._pending -= count
            self._changed.notify_all()

    async def _drain(self, entity: _Entity) -> None:
        failed = False
        try:
            while not self._stopping and entity.queue and entity.queue[0].durable:
                batch: list[Signal] = []
                for signal in entity.queue:
                    if not signal.durable or len(batch) >= self.max_batch_size:
                        break
                    batch.append(signal)
                await self._run_batch(entity, batch)
                for _ in batch:
                    entity.queue.popleft()
                await self._settled(len(batch))
        except Exception:
            failed = True
            log.exception("entity %s: batch failed; its signals stay stored, retrying", entity.id)
        finally:
            entity.worker = None
        if failed:
            asyncio.get_running_loop().call_later(1.0, self._kick, entity)
        else:
            self._kick(entity)

    async def _run_batch(self, entity: _Entity, batch: list[Signal]) -> None:
        """Invoke the function on the batch (one of ``concurrency`` slots), then commit what it
        left outside the slot: commits wait for a shared transaction (``PartitionWriter``), and
        the more entities wait at once, the more commits it holds."""
        async with self._slots:
            stored, exists, state = await self._invoke(entity, batch)
        entity.stored = await self._commit(entity, stored, exists, state, batch)

    async def _invoke(
        self, entity: _Entity, batch: list[Signal]
    ) -> tuple[StoredState, bool, str | None]:
        if entity.stored is None:
            entity.stored = await self._store.load_state(entity.id)
        stored = entity.stored
        request = build_batch_request(entity.id, stored, batch)
        if self.batch_observer is not None:
            self.batch_observer(request)
        exists, state = stored.exists, stored.state
        spec = self._functions[entity.id.name]
        results: list[dict[str, Any]] = []
        try:
            context = EntityContext(request)
            if spec.is_async:  # as the worker runs functions: async on the loop, sync in a thread
                text = await spec.func(context)
            else:
                text = await asyncio.to_thread(spec.func, context)
            output = json.loads(text)
            results = list(output.get("results", []))
            exists = bool(output.get("entityExists", False))
            state = output.get("entityState") if exists else None
            for signal, result in zip(batch, output.get("results", []), strict=False):
                if result.get("isError"):
                    log.warning(
                        "entity %s operation %r failed: %s",
                        entity.id,
                        signal.operation,
                        result.get("result"),
                    )
        except Exception:
            # The invocation itself failed (the SDK turns an operation's exception into a result,
            # so this is the function around it, e.g. an archive write): nothing of the batch is
            # committed. Like the Durable extension for an aborted work item, run the batch again
            # (its signals stay stored), but give up after a few attempts so that one batch that
            # always fails cannot wedge the entity forever.
            entity.failed_attempts += 1
            if entity.failed_attempts < BATCH_ATTEMPTS:
                raise
            log.exception(
                "entity %s: batch of %d failed %d times; its signals are dropped, state unchanged",
                entity.id,
                len(batch),
                entity.failed_attempts,
            )
            failure = {"isError": True, "result": "the entity invocation failed repeatedly"}
            results = [failure] * len(batch)
        await self._reply(batch, results)
        entity.failed_attempts = 0
        self.batches_run += 1
        return stored, exists, state

    async def _reply(self, batch: list[Signal], results: list[dict[str, Any]]) -> None:
        """Send calls' results before the batch commits: a crash in between runs the batch again
        from the old state and sends the same result again, which the caller drops as a duplicate
        (so a result is never lost, and the state changes once)."""
        for signal, result in zip(batch, results, strict=False):
            if signal.reply is not None and self.reply_sink is not None:
                await self.reply_sink(json.loads(signal.reply), signal.id, result)

    async def _commit(
        self,
        entity: _Entity,
        stored: StoredState,
        exists: bool,
        state: str | None,
        batch: list[Signal],
    ) -> StoredState:
        delay = 0.1
        while True:
            try:
                return await self._store.commit(entity.id, stored, exists, state, batch)
            except EntityStateTooLargeError:
                log.error(
                    "entity %s: new state too large to store; batch of %d discarded, state kept",
                    entity.id,
                    len(batch),
                    exc_info=True,
                )
                exists, state = stored.exists, stored.state
            except AzureError:
                if self._stopping:
                    raise
                log.warning("entity %s: commit failed, retrying in %.1fs", entity.id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
