"""Orchestration instances, their history and their pending messages, in one Azure Table.

Layout (one partition per instance, so one transaction covers everything an episode changes):

    PartitionKey  the instance id (characters Table keys forbid are %-escaped)
    RowKey        `instance`        status, name, input/output/custom status, counters (JSON, chunked)
                  `h-<ep>-<part>`   the history events one episode appended (a JSON array, chunked)
                  `in-<seq>`        one message from outside not yet applied: a history event for
                                    the next episode (ExecutionStarted, EventRaised, an entity's
                                    answer, a child's completion, ExecutionTerminated)
                  `out-<seq>`       messages for other partitions (entities, sub-orchestrations,
                                    a parent) the episode produced, until they are delivered

An episode deletes the inbox rows it consumed, appends its history rows, replaces the instance row
and adds its outbox row in one transaction (`devhost.table_transaction`): a crash leaves either the old instance (the
messages still in the inbox, the episode runs again) or the new one (the messages gone, their
effects in history). Work that is not a message (activities to run, timers to fire) is derived from
history: a `TaskScheduled` without its completion, a `TimerCreated` without its `TimerFired`; their
results are held in memory and recorded by the episode that applies them.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from devhost.entity_store import CHUNK_CHARS, CHUNKS_PER_ROW, _SeqGenerator
from devhost.storage_clients import client_options
from devhost.table_transaction import submit_transaction

__all__ = [
    "MAX_INBOX_PER_EPISODE",
    "InstanceRecord",
    "Message",
    "OrchestrationStore",
    "StoredInstance",
]

INSTANCE_ROW = "instance"
HISTORY_PREFIX = "h-"
INBOX_PREFIX = "in-"
OUTBOX_PREFIX = "out-"
MAX_INBOX_PER_EPISODE = 60
"""Inbox rows one episode consumes at most (the rest wait for the next): transactions hold 100."""
_FORBIDDEN = re.compile(r"[%/\\#?\x00-\x1f\x7f-\x9f]")


def partition_of(instance_id: str) -> str:
    return _FORBIDDEN.sub(lambda m: f"%{ord(m.group()):02X}", instance_id)


def _chunked_row(pk: str, rk: str, text: str, **extra: Any) -> list[dict[str, Any]]:
    """`text` as one row or more (`rk`, `rk.1`, ...), each at most 12 properties of 16 000 chars."""
    chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
    rows: list[dict[str, Any]] = []
    for start in range(0, len(chunks), CHUNKS_PER_ROW):
        row: dict[str, Any] = {"PartitionKey": pk, "RowKey": rk if not start else f"{rk}.{start}"}
        for i, chunk in enumerate(chunks[start : start + CHUNKS_PER_ROW]):
            row[f"c{i:03d}"] = chunk
        rows.append(row)
    rows[0].update(extra, parts=len(rows))
    return rows


def _text(rows: list[dict[str, Any]]) -> str:
    out: list[str] = []
    for row in rows:
        keys = sorted(k for k in row if re.fullmatch(r"c\d{3}", k))
        out.extend(str(row[k]) for k in keys)
    return "".join(out)


def _group(rows: list[dict[str, Any]], prefix: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows of one prefix, grouped by their head row key (continuations `rk.N` follow the head)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        rk = str(row["RowKey"])
        if rk.startswith(prefix):
            groups.setdefault(rk.split(".", 1)[0], []).append(row)
    ordered = []
    for head in sorted(groups):
        parts = sorted(groups[head], key=lambda r: int(str(r["RowKey"]).partition(".")[2] or 0))
        ordered.append((head, parts))
    return ordered


@dataclass
class Message:
    """A history event waiting in an instance's inbox (or an outbox entry), with its row key."""

    key: str
    body: dict[str, Any]
    rows: int = 1
    """How many rows hold it; 0 for a message held in memory only (an activity result or a fired
    timer, recorded by the episode that consumes it)."""

    def row_keys(self) -> list[str]:
        if not self.rows:
            return []
        return [self.key] + [f"{self.key}.{CHUNKS_PER_ROW * i}" for i in range(1, self.rows)]


@dataclass
class InstanceRecord:
    """The `instance` row: everything about an instance except its history and messages."""

    instance_id: str
    name: str
    status: str = "Pending"
    execution_id: str = ""
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    created: str = ""
    updated: str = ""
    episodes: int = 0
    next_id: int = 0
    applied: int = 0
    retries: dict[str, Any] = field(default_factory=dict)
    cancelled_timers: list[int] = field(default_factory=list)
    action_ids: list[int | None] = field(default_factory=list)
    parent: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> InstanceRecord:
        return cls(**json.loads(text))


@dataclass
class StoredInstance:
    record: InstanceRecord
    history: list[dict[str, Any]]
    history_rows: list[str]
    inbox: list[Message]
    outbox: list[Message]


class OrchestrationStore:
    """Reads and writes instance partitions; the host must be the only writer of its table."""

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

    def next_seq(self) -> str:
        return self._seq.next()

    async def load(self, instance_id: str) -> StoredInstance | None:
        pk = partition_of(instance_id).replace("'", "''")
        rows: list[dict[str, Any]] = [
            dict(r) async for r in self._table.query_entities(f"PartitionKey eq '{pk}'")
        ]
        return _assemble(rows)

    async def instance_ids(self, statuses: set[str] | None = None) -> AsyncIterator[InstanceRecord]:
        """Every instance row (a scan of the table's `instance` rows), optionally by status."""
        query = f"RowKey ge '{INSTANCE_ROW}' and RowKey lt '{INSTANCE_ROW}/'"
        heads: dict[str, list[dict[str, Any]]] = {}
        async for row in self._table.query_entities(query):
            heads.setdefault(str(row["PartitionKey"]), []).append(row)
        for rows in heads.values():
            group = _group(rows, INSTANCE_ROW)
            if not group:
                continue
            record = InstanceRecord.from_json(_text(group[0][1]))
            if statuses is None or record.status in statuses:
                yield record

    async def pending_outboxes(self) -> dict[str, list[Message]]:
        """Outbox rows not yet delivered, per instance id (finished instances' too)."""
        query = f"RowKey ge '{OUTBOX_PREFIX}' and RowKey lt 'out.'"
        rows: dict[str, list[dict[str, Any]]] = {}
        async for row in self._table.query_entities(query):
            rows.setdefault(str(row["PartitionKey"]), []).append(dict(row))
        found: dict[str, list[Message]] = {}
        for pk, group in rows.items():
            instance_id = re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), pk)
            found[instance_id] = [
                Message(k, {"messages": json.loads(_text(p))}, len(p))
                for k, p in _group(group, OUTBOX_PREFIX)
            ]
        return found

    async def create(
        self, record: InstanceRecord, started: dict[str, Any], *, replace: StoredInstance | None
    ) -> Message:
        """A new instance: its row and the ExecutionStarted message (after purging `replace`)."""
        if replace is not None:
            await self.purge(replace)
        pk = partition_of(record.instance_id)
        ops: list[tuple[Any, ...]] = []
        for row in _chunked_row(pk, INSTANCE_ROW, record.to_json()):
            ops.append(("create", row))
        key = INBOX_PREFIX + self.next_seq()
        rows = _chunked_row(pk, key, json.dumps(started))
        ops.extend(("create", row) for row in rows)
        await submit_transaction(self._table, ops)
        return Message(key, started, len(rows))

    async def add_message(self, instance_id: str, event: dict[str, Any]) -> Message:
        """Append a message to an instance's inbox (durable once this returns)."""
        pk = partition_of(instance_id)
        key = INBOX_PREFIX + self.next_seq()
        rows = _chunked_row(pk, key, json.dumps(event))
        if len(rows) == 1:
            await self._table.create_entity(rows[0])
        else:
            await submit_transaction(self._table, [("create", r) for r in rows])
        return Message(key, event, len(rows))

    async def commit_episode(
        self,
        record: InstanceRecord,
        *,
        consumed: list[Message],
        new_events: list[dict[str, Any]],
        outbox: list[dict[str, Any]],
        reset_history: list[str],
        restart_with: dict[str, Any] | None = None,
    ) -> tuple[list[str], Message | None, Message | None]:
        """Apply one episode atomically; returns (new history row keys, outbox msg, inbox msg)."""
        pk = partition_of(record.instance_id)
        ops: list[tuple[Any, ...]] = []
        for message in consumed:
            ops.extend(("delete", {"PartitionKey": pk, "RowKey": k}) for k in message.row_keys())
        ops.extend(("delete", {"PartitionKey": pk, "RowKey": k}) for k in reset_history)
        history_keys: list[str] = []
        if new_events:
            key = f"{HISTORY_PREFIX}{record.episodes:06d}"
            rows = _chunked_row(pk, key, json.dumps(new_events))
            history_keys = [r["RowKey"] for r in rows]
            ops.extend(("upsert", r, {"mode": UpdateMode.REPLACE}) for r in rows)
        for row in _chunked_row(pk, INSTANCE_ROW, record.to_json()):
            ops.append(("upsert", row, {"mode": UpdateMode.REPLACE}))
        out_message = None
        if outbox:
            key = OUTBOX_PREFIX + self.next_seq()
            rows = _chunked_row(pk, key, json.dumps(outbox))
            ops.extend(("create", r) for r in rows)
            out_message = Message(key, {"messages": outbox}, len(rows))
        in_message = None
        if restart_with is not None:
            key = INBOX_PREFIX + self.next_seq()
            rows = _chunked_row(pk, key, json.dumps(restart_with))
            ops.extend(("create", r) for r in rows)
            in_message = Message(key, restart_with, len(rows))
        if len(ops) > 100:
            raise ValueError(f"an episode of {record.instance_id} needs {len(ops)} row operations")
        await submit_transaction(self._table, ops)
        return history_keys, out_message, in_message

    async def delete_message(self, instance_id: str, message: Message) -> None:
        pk = partition_of(instance_id)
        for key in message.row_keys():
            with contextlib.suppress(ResourceNotFoundError):
                await self._table.delete_entity(pk, key)

    async def purge(self, stored: StoredInstance) -> None:
        """Delete every row of an instance (history, messages and the instance row)."""
        pk = partition_of(stored.record.instance_id).replace("'", "''")
        rows = [r async for r in self._table.query_entities(f"PartitionKey eq '{pk}'")]
        deletes = [
            ("delete", {"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]}) for r in rows
        ]
        for start in range(0, len(deletes), 100):
            await submit_transaction(self._table, deletes[start : start + 100])


def _assemble(rows: list[dict[str, Any]]) -> StoredInstance | None:
    head = _group(rows, INSTANCE_ROW)
    if not head:
        return None
    record = InstanceRecord.from_json(_text(head[0][1]))
    history: list[dict[str, Any]] = []
    history_rows: list[str] = []
    for _, parts in _group(rows, HISTORY_PREFIX):
        history.extend(json.loads(_text(parts)))
        history_rows.extend(str(p["RowKey"]) for p in parts)
    inbox = [Message(k, json.loads(_text(p)), len(p)) for k, p in _group(rows, INBOX_PREFIX)]
    outbox = [
        Message(k, {"messages": json.loads(_text(p))}, len(p))
        for k, p in _group(rows, OUTBOX_PREFIX)
    ]
    return StoredInstance(record, history, history_rows, inbox, outbox)
