"""What the function app's functions share: settings, the agent kinds, the entity, storage.

One ``AppRuntime`` belongs to one ``FunctionApp`` (see ``create_app``); nothing here is a module
global. Settings and storage clients are created on first use, so importing the app never touches
configuration or the network, and a configuration error is reported by the first invocation with
the name of the setting at fault. Storage clients are async and bound to the event loop that made
them (the worker runs one loop); a different loop gets its own clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aos.agents import AgentKinds
from aos.agents.entity import AgentEntity
from aos.errors import AOSError
from aos.settings import Settings

if TYPE_CHECKING:  # the storage and HTTP side load on first use (shorter cold start)
    from aos.domain.contexts import ContextStore
    from aos.domain.effects import Effect, EffectSender
    from aos.domain.history import HistoryArchive, HistoryRecord, HistoryWriter
    from aos.ports.index import AgentIndex
    from aos.ports.letters import LetterStore
    from aos.ports.maintenance import PurgeJobs, Retention
    from aos.ports.models import ChatModel
    from aos.ports.queue import EventQueue
    from aos.ports.receipts import DeliveryReceipts
    from aos.services.agents import AgentService
    from aos.services.batching import DeliveryBatcher
    from aos.services.letters import DeadLetters
    from aos.services.messages import MessageService

__all__ = ["AppRuntime", "Storage"]

logger = logging.getLogger("aos.runtime")
HEALTH_TIMEOUT_SECONDS = 5.0
BATCH_WRITE_TIMEOUT_SECONDS = 120.0
"""How long an entity batch waits for its archive and effect writes on the event loop (the
storage clients' own retries end well before)."""


@dataclass(frozen=True, slots=True)
class Storage:
    index: AgentIndex
    queue: EventQueue
    receipts: DeliveryReceipts
    history: HistoryArchive
    letters: LetterStore
    retention: Retention
    purges: PurgeJobs

    async def close(self) -> None:
        await self.retention.close()
        await self.purges.close()
        await self.letters.close()
        await self.index.close()
        await self.queue.close()
        await self.receipts.close()
        await self.history.close()


class AppRuntime:
    def __init__(
        self,
        kinds: AgentKinds | None = None,
        *,
        load_settings: Callable[[], Settings] = Settings.from_environ,
        settle_timeout: float = 10.0,
        history_writer: HistoryWriter | None = None,
        effect_sender: EffectSender | None = None,
    ) -> None:
        self._history_writer = history_writer
        self._effect_sender = effect_sender
        self.kinds = kinds if kinds is not None else AgentKinds.builtin()
        self._load_settings = load_settings
        self.settle_timeout = settle_timeout
        self._storage: tuple[asyncio.AbstractEventLoop, Storage] | None = None
        self._batcher: DeliveryBatcher | None = None
        self._models: tuple[asyncio.AbstractEventLoop, dict[str, ChatModel]] | None = None

    @cached_property
    def settings(self) -> Settings:
        return self._load_settings()

    @cached_property
    def entity(self) -> AgentEntity:
        return AgentEntity(self.kinds, self.settings.limits)

    @cached_property
    def archives(self) -> bool:
        """Whether entity batches archive their records: with a writer given (tests) or storage
        configured; without either (the entity function on its own) there is nowhere to write,
        and records are not even collected."""
        if self._history_writer is not None or self.settings.storage.configured:
            return True
        logger.warning("no storage configured: entity history is not archived")
        return False

    @cached_property
    def emits(self) -> bool:
        """Whether entity batches send their effects (sends, publishes, reminder and turn
        control) to the events queue; without storage they are dropped."""
        return self._effect_sender is not None or self.settings.storage.configured

    def complete_batch(self, journal: list[HistoryRecord], effects: list[Effect]) -> None:
        """Archive one entity batch's records, then send its effects, before its result goes
        back to the host (a failure fails the batch, which runs again with the same keys and
        ids). Called from the entity function on a worker thread.

        When the worker's event loop is running (the app's async functions opened the storage
        on it), the writes go there, through the async clients, and this thread waits for
        them. A thread that does its own socket I/O wakes at every step of every request and
        waits for the GIL each time while the loop is busy: measured, most of an entity batch's
        time under load (docs/PERFORMANCE.md). Otherwise (no loop yet, or a writer given) the
        synchronous clients write from this thread."""
        if not journal and not effects:
            return
        loop = self._app_loop()
        if loop is not None:
            done = asyncio.run_coroutine_threadsafe(self._complete(journal, effects), loop)
            done.result(timeout=BATCH_WRITE_TIMEOUT_SECONDS)
            return
        writer, sender = self.history_writer, self.effect_sender
        if journal and writer is not None:
            writer.write(journal)
        if effects and sender is not None:
            sender.send([effect.text for effect in effects])

    async def _complete(self, journal: list[HistoryRecord], effects: list[Effect]) -> None:
        storage = self.storage()
        if journal:
            await storage.history.append(records=journal)
        for effect in effects:
            await storage.queue.send(message=effect.text)

    def _app_loop(self) -> asyncio.AbstractEventLoop | None:
        """The running event loop the app's storage lives on, if this thread may wait for it."""
        if self._history_writer is not None or self._effect_sender is not None:
            return None  # writers given (tests): they are synchronous
        if self._storage is None:
            return None
        loop = self._storage[0]
        if loop.is_closed() or not loop.is_running():
            return None
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        return None if current is loop else loop  # waiting on our own loop would deadlock

    @cached_property
    def history_writer(self) -> HistoryWriter | None:
        """The entity batches' synchronous path into the archive, when there is no event loop
        to write on; ``None`` without storage."""
        if self._history_writer is not None:
            return self._history_writer
        settings = self.settings
        if not settings.storage.configured:
            return None
        from aos.adapters.azure.clients import sync_table_client
        from aos.adapters.azure.history import TableHistoryWriter

        return TableHistoryWriter(
            lambda: sync_table_client(settings.storage, settings.history_table)
        )

    @cached_property
    def effect_sender(self) -> EffectSender | None:
        """The entity batches' synchronous way to the events queue, when there is no event loop
        to send on; ``None`` without storage (effects are dropped)."""
        if self._effect_sender is not None:
            return self._effect_sender
        settings = self.settings
        if not settings.storage.configured:
            return None
        from aos.adapters.azure.clients import sync_queue_client
        from aos.adapters.azure.queues import QueueEffectSender

        return QueueEffectSender(lambda: sync_queue_client(settings.storage, settings.events_queue))

    def chat_model(self, adapter_name: str) -> ChatModel:
        """The model an agent's ``adapter_name`` thinks with: its ``AOS_MODELS__<adapter>__*``
        profile (or the ``default`` one), else the offline model. One per profile and event
        loop (its HTTP connections belong to the loop)."""
        loop = asyncio.get_running_loop()
        if self._models is None or self._models[0] is not loop:
            self._models = (loop, {})
        models = self._models[1]
        profile = self.settings.model_profile(adapter_name)
        key = profile.name if profile is not None else ""
        model = models.get(key)
        if model is None:
            if profile is None:
                from aos.services.offline_model import OfflineModel

                model = OfflineModel()
            else:
                from aos.adapters.models import chat_model_for

                model = chat_model_for(profile)
            models[key] = model
        return model

    def contexts(self, durable_client: Any) -> ContextStore:
        """Agents' state (through the durable client) and history (the table), in one seam."""
        from aos.adapters.azure.durable import DurableEntityClient
        from aos.domain.contexts import ContextStore
        from aos.services.contexts import EntityContextServer

        return ContextStore(
            states=EntityContextServer(DurableEntityClient(durable_client)),
            archive=self.storage().history,
        )

    def storage(self) -> Storage:
        loop = asyncio.get_running_loop()
        if self._storage is None or self._storage[0] is not loop:
            self._storage = (loop, self._connect())
            self._batcher = None
        return self._storage[1]

    def batcher(self) -> DeliveryBatcher:
        """The worker's one ``DeliveryBatcher`` (per event loop, like the storage clients), so
        that concurrent deliveries to one agent share a signal."""
        storage = self.storage()
        if self._batcher is None:
            from aos.services.batching import DeliveryBatcher

            self._batcher = DeliveryBatcher(storage.receipts)
        return self._batcher

    def manager(self, durable_client: Any) -> AgentService:
        from aos.adapters.azure.durable import DurableEntityClient
        from aos.services.agents import AgentService

        storage = self.storage()
        return AgentService(
            index=storage.index,
            queue=storage.queue,
            entities=DurableEntityClient(durable_client),
            kinds=self.kinds,
            limits=self.settings.limits,
            receipts=storage.receipts,
            purges=storage.purges,
            settle_timeout=self.settle_timeout,
            contexts=self.contexts(durable_client),
        )

    def messages(self, durable_client: Any) -> MessageService:
        from aos.adapters.azure.durable import DurableTurnScheduler
        from aos.services.messages import MessageService

        return MessageService(self.manager(durable_client), DurableTurnScheduler(durable_client))

    def dead_letters(self) -> DeadLetters:
        from aos.services.letters import DeadLetters

        storage = self.storage()
        return DeadLetters(store=storage.letters, queue=storage.queue)

    async def storage_health(self) -> dict[str, str]:
        """Storage reachability for ``GET /api/health``: one cheap call per service, bounded in
        time; ``{"queues": "ok" | reason, "tables": "ok" | reason}``."""
        try:
            storage = self.storage()
        except AOSError as exc:  # configuration: say which setting
            return {"queues": str(exc), "tables": str(exc)}

        async def probe(name: str, call: Awaitable[None]) -> tuple[str, str]:
            try:
                await asyncio.wait_for(call, HEALTH_TIMEOUT_SECONDS)
            except TimeoutError:
                return name, f"no answer within {HEALTH_TIMEOUT_SECONDS:.0f} s"
            except Exception as exc:
                return name, f"unreachable: {type(exc).__name__}"
            return name, "ok"

        results = await asyncio.gather(
            probe("queues", storage.queue.ping()), probe("tables", storage.index.ping())
        )
        return dict(results)

    async def aclose(self) -> None:
        """Close the storage clients of the current loop (tests and local hosts call this)."""
        if self._storage is not None:
            storage, self._storage = self._storage[1], None
            await storage.close()

    def _connect(self) -> Storage:
        from aos.adapters.azure.agent_index import TableAgentIndex
        from aos.adapters.azure.clients import queue_client, table_client
        from aos.adapters.azure.history import TableHistoryArchive
        from aos.adapters.azure.letters import TableLetterStore
        from aos.adapters.azure.maintenance import TablePurgeJobs, TableRetention
        from aos.adapters.azure.queues import AzureEventQueue
        from aos.adapters.azure.receipts import TableDeliveryReceipts
        from aos.adapters.cached_index import CachedAgentIndex

        settings = self.settings
        return Storage(
            index=CachedAgentIndex(
                TableAgentIndex(table_client(settings.storage, settings.agents_table))
            ),
            queue=AzureEventQueue(
                queue_client(settings.storage, settings.events_queue),
                queue_client(settings.storage, settings.deadletter_queue),
            ),
            receipts=TableDeliveryReceipts(table_client(settings.storage, settings.history_table)),
            history=TableHistoryArchive(table_client(settings.storage, settings.history_table)),
            letters=TableLetterStore(table_client(settings.storage, settings.deadletter_table)),
            retention=TableRetention(table_client(settings.storage, settings.history_table)),
            purges=TablePurgeJobs(
                table_client(settings.storage, settings.history_table),
                queue_client(settings.storage, settings.maintenance_queue),
            ),
        )
