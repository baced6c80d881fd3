"""Durable entity state and pending signals, persisted in one Azure Table (Azurite locally).

Layout (one partition per entity, so one transaction can cover everything an entity batch changes):

    PartitionKey  `<entity name>@<key>` (characters Table keys forbid are %-escaped)
    RowKey        `state~<tag>`         exists flag and the state JSON, in chunks (`s000`, ...)
                  `state~<tag>-001`...  more chunks when the state outgrows one row (1 MB per row)
                  `sig-<seq>`           one pending signal: operation name, id, input (chunked)

`<tag>` is 16 hex digits of the partition key's sha256: no two entities' state rows share a row
key. Azurite finds a row by its row key first (its index), then compares the partition key of
every row with that row key, so with the one name `state` for every entity (the layout before) each
commit and load cost Azurite time in proportion to the number of entities (measured: an upsert
2.8 ms of Azurite CPU at 20,000 entities, 0.6 ms with distinct keys). Rows of that layout are
still read, and replaced by the entity's next commit.

A signal row is written before the signal is acknowledged. The state a batch produced is stored
together with the sequence numbers of the signals it applied (`applied` on the head row), in one
write, and the signal rows are deleted after it. A crash at any point leaves either the old state
with the signal rows (applied again on restart) or the new state, whose `applied` list says which
of the rows still present were applied already (skipped and deleted on restart): every signal
changes the state exactly once. One single-row write per batch costs the client a third of what a
two-row transaction does (the SDK builds a transaction's multipart body with the `email` package;
measured: upsert 1.2 ms of CPU, delete 0.8 ms, a two-row transaction 3.6 ms). A state of more than
one row is still written, with the deletes, in one transaction.
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
from dataclasses import dataclass, replace
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from devhost.errors import EntityStateTooLargeError
from devhost.storage_clients import client_options

__all__ = [
    "MAX_SIGNALS_PER_COMMIT",
    "EntityId",
    "EntityStore",
    "Signal",
    "StoredState",
    "state_row_names",
]

CHUNK_CHARS = 16_000  # <= 64 KiB as UTF-16 even if every char is a surrogate pair
CHUNKS_PER_ROW = 12  # 12 x 64 KiB < the 1 MiB entity limit
MAX_STATE_ROWS = 5  # a transaction carries at most 4 MiB
MAX_SIGNAL_CHUNKS = CHUNKS_PER_ROW
TRANSACTION_LIMIT = 100
# State rows to upsert + stale rows to delete + consumed signals must fit one transaction.
MAX_SIGNALS_PER_COMMIT = TRANSACTION_LIMIT - 2 * MAX_STATE_ROWS
STATE_ROW = "state"
"""The prefix of every state row's key, and the whole key of a head row in the older layout."""
SIGNAL_PREFIX = "sig-"
APPLIED = "applied"
"""The head state row's list of the signal rows (sequence numbers) its state has applied."""
MAX_APPLIED = 2 * MAX_SIGNALS_PER_COMMIT
"""Applied rows not deleted yet beyond this many (deletes kept failing): commit and delete them in
one transaction instead of growing the list."""
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

    @property
    def row_key(self) -> str:
        return SIGNAL_PREFIX + self.seq


@dataclass(frozen=True)
class StoredState:
    exists: bool = False
    state: str | None = None
    rows: int = 0  # how many state rows are stored (0 = none)
    applied: tuple[str, ...] = ()
    """Signal rows (sequence numbers) this state has applied that may not be deleted yet."""
    legacy: bool = False
    """Stored under the older row names (``state``, ``state-001``...): the next commit moves it."""


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

    async def open(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._table.create_table()

    async def close(self) -> None:
        await self._table.close()

    def new_signal(self, signal_id: str, operation: str, input_text: str | None) -> Signal:
        return Signal(seq=self._seq.next(), id=signal_id, operation=operation, input=input_text)

    @staticmethod
    def signal_fits(input_text: str | None) -> bool:
        return input_text is None or len(input_text) <= CHUNK_CHARS * MAX_SIGNAL_CHUNKS

    async def add_signal(self, entity: EntityId, signal: Signal) -> None:
        row: dict[str, Any] = {
            "PartitionKey": entity.partition_key,
            "RowKey": signal.row_key,
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
        await self._table.create_entity(row)

    async def load_state(self, entity: EntityId) -> StoredState:
        """The entity's stored state: its head row, then any further rows, read by key (point
        reads; Azurite answers a query by scanning the whole table)."""
        head, legacy = await self._row(entity, state_row_names(entity, 1)[0]), False
        if head is None:
            head, legacy = await self._row(entity, STATE_ROW), True
            if head is None:
                return StoredState()
        rows_stored = int(head.get("rows", 1))
        names = state_row_names(entity, rows_stored, legacy=legacy)
        rest = await asyncio.gather(*(self._row(entity, name) for name in names[1:]))
        parts = [head, *rest]
        if any(part is None for part in parts):
            raise ResourceNotFoundError(f"state rows of {entity} changed while being read")
        text = "".join(_join(part, "s") for part in parts if part is not None)
        exists = bool(head.get("exists", False))
        return StoredState(exists, text if exists else None, rows_stored, _applied(head), legacy)

    async def _row(self, entity: EntityId, row_key: str) -> dict[str, Any] | None:
        try:
            return dict(await self._table.get_entity(entity.partition_key, row_key))
        except ResourceNotFoundError:
            return None

    async def pending_signals(self) -> dict[EntityId, list[Signal]]:
        """Every signal not yet applied, per entity, in arrival order (for resuming at start-up)."""
        found: dict[EntityId, list[Signal]] = {}
        query = f"RowKey ge '{SIGNAL_PREFIX}' and RowKey lt 'sig.'"
        async for row in self._table.query_entities(query):
            entity = EntityId.from_partition_key(row["PartitionKey"])
            signal = Signal(
                seq=row["RowKey"][len(SIGNAL_PREFIX) :],
                id=str(row.get("id", "")),
                operation=str(row["op"]),
                input=_join(row, "i") if row.get("has_input") else None,
                durable=True,
                reply=row.get("reply"),
            )
            found.setdefault(entity, []).append(signal)
        for entity, signals in found.items():
            signals.sort(key=lambda s: s.seq)
            applied = set((await self.load_state(entity)).applied)
            done = [s for s in signals if s.seq in applied]
            if done:  # applied before a restart, not deleted yet: delete now, never run again
                await self.forget(entity, [signal.seq for signal in done])
                found[entity] = [s for s in signals if s.seq not in applied]
        return {entity: signals for entity, signals in found.items() if signals}

    async def forget(self, entity: EntityId, applied: Iterable[str]) -> None:
        """Delete the rows of signals (sequence numbers) a committed state has applied; its
        `applied` list keeps them from running again until they are gone."""
        pk = entity.partition_key
        keys = [SIGNAL_PREFIX + seq for seq in applied]
        if len(keys) > _SMALL_GROUP:
            with contextlib.suppress(TableTransactionError, ResourceNotFoundError):
                await self._table.submit_transaction(
                    [("delete", {"PartitionKey": pk, "RowKey": k}) for k in keys]
                )
                return
            # some were gone already (an earlier attempt got part way): one by one
        for key in keys:
            with contextlib.suppress(ResourceNotFoundError):
                await self._table.delete_entity(pk, key)

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
            row: dict[str, Any] = {"PartitionKey": entity.partition_key, "RowKey": row_name}
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
        """Store the state a batch produced, with which signals it applied (``consumed`` and the
        ones ``previous`` applied that may not be deleted yet). One row: a single write, after
        which the caller deletes the signal rows (``forget``). More rows: one transaction that
        also deletes the signal rows."""
        pk = entity.partition_key
        consumed = list(consumed)
        if len(consumed) > MAX_SIGNALS_PER_COMMIT:
            raise ValueError(f"at most {MAX_SIGNALS_PER_COMMIT} signals per commit")
        if not exists and previous.applied:  # the rows go with the head row that lists them
            await self.forget(entity, previous.applied)
            previous = replace(previous, applied=())
        rows = self._state_rows(entity, state) if exists else []
        new_rows = len(rows)
        applied = (*previous.applied, *(signal.seq for signal in consumed))
        if (
            new_rows == 1
            and previous.rows <= 1
            and not previous.legacy
            and len(applied) <= MAX_APPLIED
        ):
            rows[0][APPLIED] = ",".join(applied)
            await self._table.upsert_entity(rows[0], mode=UpdateMode.REPLACE)
            return StoredState(True, state, 1, applied)
        if rows:  # this batch's signal rows go in the transaction: only earlier ones stay listed
            rows[0][APPLIED] = ",".join(previous.applied)
        ops: list[tuple[Any, ...]] = [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows]
        kept = {row["RowKey"] for row in rows}
        for row_name in state_row_names(entity, previous.rows, legacy=previous.legacy):
            if row_name not in kept:
                ops.append(("delete", {"PartitionKey": pk, "RowKey": row_name}))
        for signal in consumed:
            ops.append(("delete", {"PartitionKey": pk, "RowKey": signal.row_key}))
        if ops:
            await self._table.submit_transaction(ops)
        return StoredState(exists, state if exists else None, new_rows, previous.applied)


_SMALL_GROUP = 4
"""Up to this many rows, single deletes cost the client less CPU than a transaction."""


def _applied(head: dict[str, Any]) -> tuple[str, ...]:
    listed = str(head.get(APPLIED) or "")
    return tuple(listed.split(",")) if listed else ()


def state_row_names(entity: EntityId, count: int, *, legacy: bool = False) -> list[str]:
    """The keys of an entity's ``count`` state rows, the head row first (see the layout)."""
    tag = hashlib.sha256(entity.partition_key.encode()).hexdigest()[:16]
    head = STATE_ROW if legacy else f"{STATE_ROW}~{tag}"
    return [head if i == 0 else f"{head}-{i:03d}" for i in range(count)]


def _grouped(items: list[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while group := list(itertools.islice(iterator, size)):
        yield group
