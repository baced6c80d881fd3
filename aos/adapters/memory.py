"""In-memory adapters for every storage port: the agents index, the events queue, delivery
receipts and the agent entities (which run the real ``agent`` entity operations in process).

They keep the ports' contracts (ETags, refusals, copies instead of shared objects) so that the
manager, the delivery and the MCP logic can be tested without Azurite, and so that agents can be
registered and driven in one Python process (``AgentManager()`` with no arguments). Nothing here
imports an Azure SDK.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from aos.agents.entity import AgentEntity, EntityBatch
from aos.domain.history import HistoryWriter
from aos.domain.models import format_timestamp, utc_now
from aos.errors import AgentExistsError, ConflictError, StorageError
from aos.ports.entity_client import EntityClient
from aos.ports.index import (
    AgentIndex,
    IndexEntry,
    Page,
    decode_position,
    decode_token,
    encode_token,
)
from aos.ports.letters import LetterQueue, LetterStore, StoredLetter
from aos.ports.queue import DeadLetter, EventQueue
from aos.ports.receipts import Claim, DeliveryReceipts, claim_decision
from aos.ports.reminders import ReminderScheduler
from aos.ports.turns import TurnScheduler

__all__ = [
    "InMemoryAgentIndex",
    "InMemoryDeliveryReceipts",
    "InMemoryEntities",
    "InMemoryEventQueue",
    "InMemoryLetterStore",
    "InMemoryReminderScheduler",
]


class InMemoryAgentIndex(AgentIndex):
    """Entries by agent id, listed in id order (as the table's row keys sort), with ETags."""

    def __init__(self) -> None:
        self._entries: dict[str, IndexEntry] = {}
        self._etags = itertools.count(1)

    def put(self, entry: IndexEntry) -> IndexEntry:
        """Store ``entry`` as it is, now (in-process registration, ``aos.manager``)."""
        return self._stored(entry)

    def remove(self, agent_id: str) -> None:
        self._entries.pop(agent_id, None)

    def _stored(self, entry: IndexEntry) -> IndexEntry:
        stored = replace(entry, etag=f"W/{next(self._etags)}")
        self._entries[entry.agent_id] = stored
        return stored

    async def get(self, *, agent_id: str) -> IndexEntry | None:
        return self._entries.get(agent_id)

    async def create(self, *, entry: IndexEntry) -> IndexEntry:
        if entry.agent_id in self._entries:
            raise AgentExistsError(entry.agent_id)
        return self._stored(entry)

    async def replace(self, *, entry: IndexEntry, previous: IndexEntry) -> IndexEntry:
        current = self._entries.get(entry.agent_id)
        if current is None or current.etag != previous.etag:
            raise ConflictError(
                f"Agent {entry.agent_id!r} was changed or removed concurrently; retry"
            )
        return self._stored(entry)

    async def delete(self, *, entry: IndexEntry) -> None:
        self._entries.pop(entry.agent_id, None)

    async def page(self, *, limit: int, continuation: str | None = None) -> Page[IndexEntry]:
        after = decode_position(continuation) if continuation else None
        ids = sorted(i for i in self._entries if after is None or i > after)
        chosen = ids[:limit]
        more = len(ids) > limit
        return Page([self._entries[i] for i in chosen], encode_token(chosen[-1]) if more else None)

    async def subscribers(self, *, event_type: str) -> list[str]:
        return sorted(
            agent_id for agent_id, entry in self._entries.items() if entry.subscribes_to(event_type)
        )

    async def ping(self) -> None:
        return None


class InMemoryEventQueue(EventQueue):
    """Messages and dead letters in lists; ``take()`` hands the waiting messages to a consumer."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.dead_letters: list[DeadLetter] = []

    async def send(self, *, message: str) -> None:
        self.messages.append(message)

    async def dead_letter(self, *, letter: DeadLetter) -> None:
        self.dead_letters.append(letter)

    async def ping(self) -> None:
        return None

    def take(self) -> list[str]:
        """Remove and return every waiting message, oldest first."""
        taken, self.messages = self.messages, []
        return taken


class InMemoryDeliveryReceipts(DeliveryReceipts):
    """Receipts with the table adapter's rules (``claim_decision``), ETags by version count."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}

    async def claim(
        self, *, agent_id: str, event_id: str, message_id: str, generation: str | None = None
    ) -> Claim:
        key = (agent_id, event_id)
        row = {
            "message_id": message_id,
            "status": "claimed",
            "claimed_at": format_timestamp(utc_now()),
            "generation": generation or "",
        }
        existing = self._rows.get(key)
        if existing is None:
            self._rows[key] = row
            return Claim.NEW
        decision = claim_decision(existing, message_id=message_id, generation=generation)
        if decision == "take-over":
            self._rows[key] = row
            return Claim.RETRY
        return Claim(decision)

    async def mark_broadcast_signalled(self, *, event_id: str, agent_ids: Sequence[str]) -> None:
        for agent_id in agent_ids:
            self.confirm(agent_id=agent_id, event_id=event_id)

    def confirm(self, *, agent_id: str, event_id: str) -> None:
        """Mark the receipt signalled: what the entity function does for an event applied by
        ``handle_events``, and the delivery for a broadcast's recipients."""
        self._rows.setdefault((agent_id, event_id), {})["status"] = "signalled"

    def release(self, *, agent_id: str, event_id: str) -> None:
        """What the entity function does for a failure record: mark the receipt failed."""
        self._rows.setdefault((agent_id, event_id), {})["failed"] = True

    async def purge(self, *, older_than: datetime, limit: int) -> int:
        cutoff = format_timestamp(older_than)
        old = [k for k, r in self._rows.items() if r.get("claimed_at", "") < cutoff][:limit]
        for key in old:
            del self._rows[key]
        return len(old)

    async def purge_agent(self, *, agent_id: str) -> int:
        keys = [k for k in self._rows if k[0] == agent_id]
        for key in keys:
            del self._rows[key]
        return len(keys)


class _Operation:
    """One entity operation as the ``agent`` entity sees it (``aos.agents.entity.EntityContext``)."""

    def __init__(self, key: str, name: str, value: Any, state: Any) -> None:
        self.entity_key = key
        self.operation_name = name
        self._input = value
        self.state = state
        self.result: Any = None
        self.destructed = False

    def get_state(self, initializer: Callable[[], Any] | None = None) -> Any:
        return self.state

    def set_state(self, state: Any) -> None:
        self.state = state

    def get_input(self) -> Any:
        return copy.deepcopy(self._input)

    def set_result(self, result: Any) -> None:
        self.result = result

    def destruct_on_exit(self) -> None:
        self.destructed = True


class InMemoryEntities(EntityClient):
    """``agent`` entities in a dict, each operation run at once by the real ``AgentEntity`` (so a
    signal is applied before ``signal`` returns). The state is round-tripped through JSON, as the
    host stores it; a failing operation changes nothing and is logged, as a signal's would be.
    Journaled history records go to ``history`` and failure records release their receipt; the
    agents' sends and publishes go to ``effects`` (the events queue) after that, as the entity
    function does."""

    def __init__(
        self,
        entity: AgentEntity,
        *,
        history: HistoryWriter | None = None,
        receipts: InMemoryDeliveryReceipts | None = None,
        effects: InMemoryEventQueue | None = None,
    ) -> None:
        self.entity = entity
        self.history = history
        self.receipts = receipts
        self.effects = effects
        self._states: dict[str, str] = {}

    async def signal(self, *, agent_id: str, operation: str, value: Any = None) -> None:
        try:
            self.run(agent_id, operation, value)
        except Exception:  # a signal's sender never sees the operation fail; the entity logs it
            return

    def run(self, agent_id: str, operation: str, value: Any = None) -> Any:
        """Run one operation now and return its result (``AOSError`` if it is refused)."""
        stored = self._states.get(agent_id)
        context = _Operation(agent_id, operation, value, json.loads(stored) if stored else None)
        batch = EntityBatch(  # a journal when anything reads it: the archive, or the receipts
            journal=[] if self.history is not None or self.receipts is not None else None,
            effects=[] if self.effects is not None else None,
        )
        self.entity.run(context, batch)
        journal = batch.journal
        if context.destructed or context.state is None:
            self._states.pop(agent_id, None)
        else:
            self._states[agent_id] = json.dumps(context.state)
        if journal:
            if self.history is not None:
                self.history.write(journal)
            for record in journal:
                if self.receipts is None:
                    break
                if record.kind == "failure":
                    self.receipts.release(agent_id=agent_id, event_id=record.event_id)
                elif record.confirms_receipt:
                    self.receipts.confirm(agent_id=agent_id, event_id=record.event_id)
        if batch.effects and self.effects is not None:
            self.effects.messages.extend(effect.text for effect in batch.effects)
        return context.result

    async def read(self, *, agent_id: str) -> dict[str, Any] | None:
        return self.state(agent_id)

    def state(self, agent_id: str) -> dict[str, Any] | None:
        """The stored state, now (a copy)."""
        stored = self._states.get(agent_id)
        return json.loads(stored) if stored is not None else None

    def remove(self, agent_id: str) -> None:
        self._states.pop(agent_id, None)

    def load(self, agent_id: str, state: dict[str, Any]) -> None:
        """Put a context in place as the entity's state (an agent object registered in process)."""
        self._states[agent_id] = json.dumps(state)

    @property
    def agent_ids(self) -> list[str]:
        return sorted(self._states)


class InMemoryReminderScheduler(ReminderScheduler):
    """Reminder orchestrations as a dict of waiting instances (``pending``: instance id ->
    ``ReminderFire`` JSON); ``AgentManager.fire_due_reminders`` plays their part."""

    def __init__(self) -> None:
        self.pending: dict[str, dict[str, Any]] = {}
        self.started: set[str] = set()

    async def start(self, *, instance_id: str, fire: dict[str, Any]) -> None:
        if instance_id not in self.started:
            self.started.add(instance_id)
            self.pending[instance_id] = dict(fire)

    async def stop(self, *, instance_id: str) -> None:
        self.pending.pop(instance_id, None)


class InMemoryTurnScheduler(TurnScheduler):
    """Turn orchestrations as data: ``started`` (instance id -> ``TurnStart`` JSON, in order) and
    ``woken`` (instance ids told they may run); ``AgentManager.run_turns`` plays their part."""

    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.woken: list[str] = []
        self.statuses: dict[str, dict[str, Any]] = {}
        """What each turn's orchestration would say of itself (kept by the one running it)."""
        self.approvals: dict[str, dict[str, Any]] = {}

    async def start(self, *, instance_id: str, start: dict[str, Any]) -> None:
        if instance_id not in self.started:
            self.started[instance_id] = dict(start)
            self.statuses[instance_id] = {
                "runtime_status": "Pending", "custom_status": None, "input": dict(start),
                "output": None, "created_time": start.get("requested_at"),
                "last_updated_time": start.get("requested_at"),
            }  # fmt: skip

    async def status(self, *, instance_id: str) -> dict[str, Any] | None:
        return self.statuses.get(instance_id)

    async def approve(self, *, instance_id: str, answer: dict[str, Any]) -> None:
        self.approvals[instance_id] = dict(answer)

    async def wake(self, *, instance_id: str) -> None:
        if instance_id not in self.started:
            raise StorageError(f"turn {instance_id!r} has not started yet")
        self.woken.append(instance_id)


class InMemoryLetterStore(LetterStore):
    """For unit tests: the same ordering and paging rules, in a dict."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], StoredLetter] = {}

    async def add(self, *, letter: StoredLetter) -> StoredLetter:
        self._rows[(letter.queue, letter.id)] = letter
        return letter

    async def get(self, *, queue: LetterQueue, letter_id: str) -> StoredLetter | None:
        return self._rows.get((queue, letter_id))

    async def page(
        self, *, queue: LetterQueue, limit: int, continuation: str | None = None
    ) -> Page[StoredLetter]:
        after = str(decode_token(continuation)) if continuation else ""
        keys = sorted(k for q, k in self._rows if q == queue and k > after)
        chosen = keys[:limit]
        more = len(keys) > limit
        return Page(
            [self._rows[(queue, k)] for k in chosen], encode_token(chosen[-1]) if more else None
        )

    async def remove(self, *, letter: StoredLetter) -> bool:
        return self._rows.pop((letter.queue, letter.id), None) is not None
