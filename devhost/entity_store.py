"""Durable entity state and pending signals, persisted in one Azure Table (Azurite locally).

Layout: every row is in the partition `entities`; `<pk>` is `<entity name>@<key>` with the
characters Table keys forbid %-escaped.

    RowKey  `state|<pk>|`         the head state row: exists flag, row count, state JSON in chunks
            `state|<pk>|001`...   more chunks when the state outgrows one row (1 MB per row)
            `sig|<pk>|<seq>`      one accepted signal not yet applied: operation, id, input

A signal row is written before the signal is acknowledged (the 202). The state a batch produced is
stored, and the rows of the signals it applied are deleted, in one transaction: a crash leaves
either the old state with the signal rows (applied again on restart) or the new state without them,
so every signal changes the state exactly once.

One partition for every entity is what lets the commits of entities that finish at the same moment
share that transaction (`PartitionWriter`): a broadcast ends hundreds of entity batches a second,
and one request per commit and one per signal delete were the largest part of the local host's CPU
and of Azurite's. Azurite finds a row by its row key first (its index), so every row key is unique
across entities; with no partition per entity, the row keys carry the entity. (In Azure a partition
serves about 2,000 operations a second: this layout is for the local host, not for production.)

Older layouts kept each entity in its own partition (`state~<tag>` or `state`, `state-001`...,
and `sig-<seq>` rows, with an `applied` list on the head row): that state is still read and moved
by the entity's next commit, and those signal rows are moved (or, if applied, deleted) at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from devhost.errors import EntityStateTooLargeError
from devhost.partition_writer import Operation, PartitionWriter
from devhost.storage_clients import client_options
from devhost.table_transaction import submit_transaction

__all__ = [
    "ENTITIES_PARTITION",
    "MAX_SIGNALS_PER_COMMIT",
    "SIGNAL_END",
    "SIGNAL_PREFIX",
    "EntityId",
    "EntityStore",
    "Signal",
    "StoredState",
    "signal_row_key",
    "state_row_names",
]

CHUNK_CHARS = 16_000  # <= 64 KiB as UTF-16 even if every char is a surrogate pair
CHUNKS_PER_ROW = 12  # 12 x 64 KiB < the 1 MiB entity limit
MAX_STATE_ROWS = 5  # a transaction carries at most 4 MiB
MAX_SIGNAL_CHUNKS = CHUNKS_PER_ROW
TRANSACTION_LIMIT = 100
# State rows to upsert + stale rows to delete + consumed signals must fit one transaction.
MAX_SIGNALS_PER_COMMIT = TRANSACTION_LIMIT - 2 * MAX_STATE_ROWS
ENTITIES_PARTITION = "entities"
"""The partition of every entity's rows (an entity's own partition key always has an `@`)."""
STATE_PREFIX = "state|"
SIGNAL_PREFIX = "sig|"
SIGNAL_END = "sig}"
"""Just past every signal row key (`}` follows `|`): signal rows are the range [prefix, end)."""
OLD_STATE_ROW = "state"
"""The prefix of every state row's key in the older layouts (entity partitions)."""
OLD_SIGNAL_PREFIX = "sig-"
APPLIED = "applied"
"""An older head row's list of the signals (sequence numbers) its state had applied."""
_FORBIDDEN = re.compile(r"[%/\\#?\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class EntityId:
    """An entity's identity; names are case-insensitive in Durable Functions, so kept lowercase."""

    name: str
    key: str

    @classmethod
    def of(cls, name: str, key: str) -> EntityId:
        return cls(name.lower(), key)

    @property
    def partition_key(self) -> str:
        raw = f"{self.name}@{self.key}"
        return _FORBIDDEN.sub(lambda m: f"%{ord(m.group()):02X}", raw)

    @classmethod
    def from_partition_key(cls, pk: str) -> EntityId:
        raw = re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), pk)
        name, _, key = raw.partition("@")
        return cls(name, key)

    def __str__(self) -> str:
        return f"@{self.name}@{self.key}"


@dataclass
class Signal:
    """One operation signalled to an entity; `input` is the raw request body (JSON text) or None."""

    seq: str
    id: str
    operation: str
    input: str | None
    durable: bool = False
    reply: str | None = None
    """For a call from an orchestration: JSON `{"instance", "execution"}` to send the result to."""


Layout = Literal["current", "tagged", "plain"]
"""Where a state is stored: `entities` partition, or the entity's own (`state~<tag>`, `state`)."""


@dataclass(frozen=True)
class StoredState:
    exists: bool = False
    state: str | None = None
    rows: int = 0  # how many state rows are stored (0 = none)
    layout: Layout = "current"
    """An older layout's state is moved by the entity's next commit."""
    applied: tuple[str, ...] = ()
    """An older head row's list of the signals it had applied (their rows may still be there)."""


class _SeqGenerator:
    """Strictly increasing, sortable sequence numbers that keep increasing across restarts."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return f"{self._last:020d}"


def _chunks(text: str) -> list[str]:
    return [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]


def _join(entity: dict[str, Any], prefix: str) -> str:
    parts = sorted((k, v) for k, v in entity.items() if re.fullmatch(prefix + r"\d{3}", k))
    return "".join(str(v) for _, v in parts)


class EntityStore:
    """Reads and writes entity rows; the host must be the only writer of its table."""

    def __init__(self, connection_string: str, table_name: str) -> None:
        self.table_name = table_name
        self._table = TableClient.from_connection_string(
            connection_string,
            table_name,
            **client_options(retry_total=5, retry_backoff_factor=0.2),
        )
        self._seq = _SeqGenerator()
        self._writer = PartitionWriter(self._table, ENTITIES_PARTITION)
        self._older_layouts = True
        """Whether the table held rows of an older layout when opened (until then: assume so)."""

    async def open(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._table.create_table()
        rows = self._table.query_entities(
            f"PartitionKey ne '{ENTITIES_PARTITION}'", select=["RowKey"], results_per_page=1
        )
        self._older_layouts = False
        async for _ in rows:  # rows of an older layout: look for them where the state is missing
            self._older_layouts = True
            break

    async def close(self) -> None:
        await self._writer.drain()
        await self._table.close()

    def new_signal(self, signal_id: str, operation: str, input_text: str | None) -> Signal:
        return Signal(seq=self._seq.next(), id=signal_id, operation=operation, input=input_text)

    @staticmethod
    def signal_fits(input_text: str | None) -> bool:
        return input_text is None or len(input_text) <= CHUNK_CHARS * MAX_SIGNAL_CHUNKS

    async def add_signal(self, entity: EntityId, signal: Signal) -> None:
        """Store a signal (``ResourceExistsError`` if its sequence number is stored already)."""
        row: dict[str, Any] = {
            "RowKey": signal_row_key(entity, signal.seq),
            "op": signal.operation,
            "id": signal.id,
            "has_input": signal.input is not None,
        }
        if signal.reply is not None:
            row["reply"] = signal.reply
        if signal.input is not None:
            if not self.signal_fits(signal.input):
                raise EntityStateTooLargeError(f"signal input for {entity} is too large")
            for i, chunk in enumerate(_chunks(signal.input)):
                row[f"i{i:03d}"] = chunk
        await self._writer.create(row)

    async def load_state(self, entity: EntityId) -> StoredState:
        """The entity's stored state: its head row, then any further rows, read by key (point
        reads; Azurite answers a query by scanning the whole table). Older layouts are looked for
        only when the current one has no head row, and only if the table had rows of one."""
        layout: Layout
        layouts: tuple[Layout, ...] = ("current", "tagged", "plain")
        for layout in layouts if self._older_layouts else layouts[:1]:
            partition, names = _state_rows_of(entity, 1, layout)
            head = await self._row(partition, names[0])
            if head is not None:
                break
        else:
            return StoredState()
        rows_stored = int(head.get("rows", 1))
        partition, names = _state_rows_of(entity, rows_stored, layout)
        rest = await asyncio.gather(*(self._row(partition, name) for name in names[1:]))
        parts = [head, *rest]
        if any(part is None for part in parts):
            raise ResourceNotFoundError(f"state rows of {entity} changed while being read")
        text = "".join(_join(part, "s") for part in parts if part is not None)
        exists = bool(head.get("exists", False))
        return StoredState(exists, text if exists else None, rows_stored, layout, _applied(head))

    async def _row(self, partition: str, row_key: str) -> dict[str, Any] | None:
        try:
            return dict(await self._table.get_entity(partition, row_key))
        except ResourceNotFoundError:
            return None

    async def pending_signals(self) -> dict[EntityId, list[Signal]]:
        """Every signal not yet applied, per entity, in arrival order (for resuming at start-up).
        Signal rows of the older layout are moved first (deleted if their state had applied them)."""
        await self._move_old_signals()
        found: dict[EntityId, list[Signal]] = {}
        query = "PartitionKey eq @partition and RowKey ge @first and RowKey lt @end"
        parameters = {"partition": ENTITIES_PARTITION, "first": SIGNAL_PREFIX, "end": SIGNAL_END}
        async for row in self._table.query_entities(query, parameters=parameters):
            entity, seq = _parse_signal_key(str(row["RowKey"]))
            found.setdefault(entity, []).append(_signal(row, seq))
        for signals in found.values():
            signals.sort(key=lambda s: s.seq)
        return found

    async def _move_old_signals(self) -> None:
        if not self._older_layouts:  # every row is in the entities partition: none to move
            return
        query = f"RowKey ge '{OLD_SIGNAL_PREFIX}' and RowKey lt 'sig.'"
        applied: dict[EntityId, set[str]] = {}
        async for row in self._table.query_entities(query):
            if row["PartitionKey"] == ENTITIES_PARTITION:
                continue
            entity = EntityId.from_partition_key(str(row["PartitionKey"]))
            seq = str(row["RowKey"])[len(OLD_SIGNAL_PREFIX) :]
            if entity not in applied:
                applied[entity] = set((await self.load_state(entity)).applied)
            if seq not in applied[entity]:  # moved, then deleted: a crash in between moves again
                with contextlib.suppress(ResourceExistsError):
                    await self.add_signal(entity, _signal(row, seq))
            with contextlib.suppress(ResourceNotFoundError):
                await self._table.delete_entity(entity.partition_key, str(row["RowKey"]))

    @staticmethod
    def _state_rows(entity: EntityId, state: str | None) -> list[dict[str, Any]]:
        """The rows a state is stored in (the head row first, with ``exists`` and ``rows``);
        ``EntityStateTooLargeError`` past ``MAX_STATE_ROWS``."""
        chunks = _chunks(state if state is not None else "null")
        count = -(-len(chunks) // CHUNKS_PER_ROW)
        if count > MAX_STATE_ROWS:
            raise EntityStateTooLargeError(
                f"state of {entity} is {len(chunks) * CHUNK_CHARS // 1000}k+ characters; the "
                f"local host stores at most {MAX_STATE_ROWS * CHUNKS_PER_ROW * CHUNK_CHARS} "
                "characters per entity"
            )
        rows: list[dict[str, Any]] = []
        names = state_row_names(entity, count)
        for row_name, group in zip(names, _grouped(chunks, CHUNKS_PER_ROW), strict=True):
            row: dict[str, Any] = {"RowKey": row_name}
            if row_name == names[0]:
                row |= {"exists": True, "rows": count}
            for i, chunk in enumerate(group):
                row[f"s{i:03d}"] = chunk
            rows.append(row)
        return rows

    async def commit(
        self,
        entity: EntityId,
        previous: StoredState,
        exists: bool,
        state: str | None,
        consumed: Iterable[Signal],
    ) -> StoredState:
        """Store the state a batch produced and delete the rows of the signals it applied, in one
        transaction (shared with other entities' commits made at the same moment). A state of an
        older layout is stored anew and its old rows deleted after that."""
        consumed = list(consumed)
        if len(consumed) > MAX_SIGNALS_PER_COMMIT:
            raise ValueError(f"at most {MAX_SIGNALS_PER_COMMIT} signals per commit")
        rows = self._state_rows(entity, state) if exists else []
        operations: list[Operation] = [
            ("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows
        ]
        if previous.layout == "current":
            kept = {row["RowKey"] for row in rows}
            for name in state_row_names(entity, previous.rows):
                if name not in kept:
                    operations.append(("delete", {"RowKey": name}))
        for signal in consumed:
            operations.append(("delete", {"RowKey": signal_row_key(entity, signal.seq)}))
        await self._writer.submit(operations)
        if previous.layout != "current" and previous.rows:
            await self._delete_old_state(entity, previous)
        return StoredState(exists, state if exists else None, len(rows))

    async def _delete_old_state(self, entity: EntityId, previous: StoredState) -> None:
        partition, names = _state_rows_of(entity, previous.rows, previous.layout)
        if len(names) > 1:
            with contextlib.suppress(ResourceNotFoundError, TableTransactionError):
                await submit_transaction(
                    self._table,
                    [("delete", {"PartitionKey": partition, "RowKey": name}) for name in names],
                )
                return
        for name in names:
            with contextlib.suppress(ResourceNotFoundError):
                await self._table.delete_entity(partition, name)


def _signal(row: dict[str, Any], seq: str) -> Signal:
    return Signal(
        seq=seq,
        id=str(row.get("id", "")),
        operation=str(row["op"]),
        input=_join(row, "i") if row.get("has_input") else None,
        durable=True,
        reply=row.get("reply"),
    )


def _applied(head: dict[str, Any]) -> tuple[str, ...]:
    listed = str(head.get(APPLIED) or "")
    return tuple(listed.split(",")) if listed else ()


def signal_row_key(entity: EntityId, seq: str) -> str:
    """A signal row's key: the entity, then its 20-digit sequence number (read back from the end,
    so an entity key holding `|` is no ambiguity)."""
    return f"{SIGNAL_PREFIX}{entity.partition_key}|{seq}"


def _parse_signal_key(row_key: str) -> tuple[EntityId, str]:
    pk, _, seq = row_key[len(SIGNAL_PREFIX) :].rpartition("|")
    return EntityId.from_partition_key(pk), seq


def state_row_names(entity: EntityId, count: int) -> list[str]:
    """The keys of an entity's ``count`` state rows, the head row first (see the layout): the
    head row ends in `|`, the others in `|` and three digits, so no two entities' keys meet."""
    head = f"{STATE_PREFIX}{entity.partition_key}|"
    return [head if i == 0 else f"{head}{i:03d}" for i in range(count)]


def _state_rows_of(entity: EntityId, count: int, layout: Layout) -> tuple[str, list[str]]:
    """The partition and row keys of a state stored in ``layout``."""
    if layout == "current":
        return ENTITIES_PARTITION, state_row_names(entity, count)
    if layout == "tagged":
        tag = hashlib.sha256(entity.partition_key.encode()).hexdigest()[:16]
        head = f"{OLD_STATE_ROW}~{tag}"
    else:
        head = OLD_STATE_ROW
    names = [head if i == 0 else f"{head}-{i:03d}" for i in range(count)]
    return entity.partition_key, names


def _grouped(items: list[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while group := list(itertools.islice(iterator, size)):
        yield group
