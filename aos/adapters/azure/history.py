"""The history archive in an Azure Table (``AOS_HISTORY_TABLE``, partition = agent id).

One row per record (``aos.domain.history`` explains the row keys). The payload is JSON text split over
``payload0``, ``payload1``, ... because a string property holds at most 64 KiB (32 K UTF-16
characters) and an event alone may be 64 KB; ``json.dumps`` escapes non-ASCII, so a character is
a byte. The delivery receipts (``aos.ports.receipts``) share the table under ``receipt|`` keys.

The entity function's batches are written through ``TableHistoryArchive.append`` on the worker's
event loop when one is running (``AppRuntime.complete_batch``), as reads and deletions are;
otherwise, and for code without an event loop, ``TableHistoryWriter`` writes the same rows with
the synchronous client, one per thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from aos.adapters.azure.tables import TableAdapter, storage_error
from aos.domain.history import (
    HISTORY_PREFIX,
    HistoryArchive,
    HistoryPage,
    HistoryQuery,
    HistoryRecord,
)
from aos.domain.models import format_timestamp
from aos.ports.receipts import broadcast_partition, receipt_key

if TYPE_CHECKING:
    from azure.data.tables import TableClient as SyncTableClient

__all__ = ["TableHistoryArchive", "TableHistoryWriter", "record_from_row", "row_from_record"]

PAYLOAD_PART_CHARS = 30_000
RESULT_MAX_CHARS = 65_536
"""A handler's result larger than this (as JSON) is archived as ``{"truncated": true, ...}``."""
TRANSACTION_ROWS = 100
"""The most operations one table transaction may hold."""
TRANSACTION_BYTES = 4 * 1024 * 1024 - 256 * 1024
"""What a transaction's body may take (4 MiB), less a margin for the multipart envelope."""
OPERATION_OVERHEAD_BYTES = 1024
"""The multipart headers of one operation in a transaction body (about 400 bytes), with room."""
SMALL_GROUP = 4
"""Up to this many rows, single upserts cost less CPU than a transaction: the SDK builds and
parses a transaction's multipart body with the ``email`` package (measured: one upsert 1.2 ms of
client CPU, a 2-row transaction 3.8 ms, a 10-row one 7 ms, 100 rows about 26 ms)."""

_END = HISTORY_PREFIX[:-1] + "}"  # "history}": just after every "history|..." key


def _parts(text: str, prefix: str) -> dict[str, Any]:
    parts = [text[i : i + PAYLOAD_PART_CHARS] for i in range(0, len(text), PAYLOAD_PART_CHARS)]
    row: dict[str, Any] = {f"{prefix}_parts": len(parts) or 1}
    for i, part in enumerate(parts or [""]):
        row[f"{prefix}{i}"] = part
    return row


def _joined(row: Any, prefix: str) -> str:
    return "".join(str(row[f"{prefix}{i}"]) for i in range(int(row.get(f"{prefix}_parts") or 0)))


def row_from_record(record: HistoryRecord) -> dict[str, Any]:
    text = json.dumps(record.payload_dict(), separators=(",", ":"))
    row: dict[str, Any] = {
        "PartitionKey": record.agent_id,
        "RowKey": record.row_key,
        "kind": record.kind,
        "event_id": record.event_id,
        "type": record.type,
        "recorded_at": record.recorded_at,
        "sequence": record.sequence,
        "generation": record.generation,
        **_parts(text, "payload"),
    }
    if record.result is not None:
        result = json.dumps(record.result, separators=(",", ":"))
        if len(result) > RESULT_MAX_CHARS:
            result = json.dumps({"truncated": True, "json_chars": len(result)})
        row.update(_parts(result, "result"))
    if record.error is not None:
        row["error"] = json.dumps(record.error)
    if record.effect:
        row["effect"] = record.effect
    return row


def record_from_row(row: Any) -> HistoryRecord:
    text = _joined(row, "payload")
    result = _joined(row, "result")
    error = row.get("error")
    return HistoryRecord(
        agent_id=str(row["PartitionKey"]),
        generation=str(row["generation"]),
        sequence=int(row["sequence"]),
        kind=row["kind"],
        event_id=str(row["event_id"]),
        type=str(row["type"]),
        recorded_at=str(row["recorded_at"]),
        payload=json.loads(text) if text else {},
        result=json.loads(result) if result else None,
        error=json.loads(error) if error else None,
        effect=int(row.get("effect") or 0),
    )


def receipt_release_rows(record: HistoryRecord) -> list[dict[str, Any]]:
    """For a ``failure`` record: marks the event's delivery receipt failed (merged into the
    receipt, so that a delivery confirming its signal later cannot undo it), which lets the same
    event sent again be delivered (``aos.ports.receipts``). The entity does not know whether the
    event came to the agent alone or in a broadcast, so both places are marked: a failure costs
    one more write, and the row that had no receipt holds a release that retention removes."""
    release = {"failed": True, "failed_at": record.recorded_at}
    return [
        {"PartitionKey": record.agent_id, "RowKey": receipt_key(record.event_id), **release},
        {
            "PartitionKey": broadcast_partition(record.event_id),
            "RowKey": receipt_key(record.agent_id),
            **release,
        },
    ]


Operation = tuple[dict[str, Any], UpdateMode]
"""A row to upsert and how: history rows replace, receipt releases merge."""


def batch_operations(records: Sequence[HistoryRecord]) -> list[Operation]:
    """What archiving ``records`` writes: a row each, a receipt confirmed per event applied by
    ``handle_events``, and receipt releases per failure (those in the agent's partition among its
    rows, the broadcast ones after them, so that the agent's rows still group into as few
    transactions as they did)."""
    operations: list[Operation] = []
    elsewhere: list[Operation] = []
    for record in records:
        operations.append((row_from_record(record), UpdateMode.REPLACE))
        if record.kind == "failure":
            own, broadcast = receipt_release_rows(record)
            operations.append((own, UpdateMode.MERGE))
            elsewhere.append((broadcast, UpdateMode.MERGE))
        elif record.confirms_receipt:
            operations.append((receipt_confirmation_row(record), UpdateMode.MERGE))
    return operations + elsewhere


def receipt_confirmation_row(record: HistoryRecord) -> dict[str, Any]:
    """For an event applied by ``handle_events``: its receipt marked ``signalled``, in the write
    that archives the event, so that a receipt never says less than what the agent applied (a
    delivery that died after its signal leaves nothing to redo: ``aos.ports.receipts``)."""
    return {
        "PartitionKey": record.agent_id,
        "RowKey": receipt_key(record.event_id),
        "status": "signalled",
    }


def sent_bytes(row: dict[str, Any]) -> int:
    """The bytes ``row`` takes in a request body: the SDK sends ``json.dumps(row)``, which
    escapes every quote and backslash of our (already ASCII-escaped) JSON payload text again, so
    a payload full of quotes or non-ASCII text is up to twice its length on the wire."""
    size = 2
    for key, value in row.items():
        size += len(key) + 6
        if isinstance(value, str):
            if value.isascii():  # our JSON text: escaping adds one byte per quote or backslash
                size += len(value) + value.count('"') + value.count("\\")
            else:
                size += len(json.dumps(value)) - 2
        else:
            size += 24
    return size + OPERATION_OVERHEAD_BYTES


def transactions(operations: Sequence[Operation]) -> Iterator[list[Operation]]:
    """Operations in groups one transaction can take: one partition, <= 100 operations, and a
    body under 4 MiB measured as it is sent (``sent_bytes``)."""
    group: list[Operation] = []
    size = 0
    for operation in operations:
        row = operation[0]
        row_size = sent_bytes(row)
        if group and (
            len(group) == TRANSACTION_ROWS
            or size + row_size > TRANSACTION_BYTES
            or row["PartitionKey"] != group[0][0]["PartitionKey"]
        ):
            yield group
            group, size = [], 0
        group.append(operation)
        size += row_size
    if group:
        yield group


def upserts(group: list[Operation]) -> list[Any]:
    """A transaction's operations for ``group``."""
    return [("upsert", row, {"mode": mode}) for row, mode in group]


async def upsert_all(client: Any, operations: Sequence[Operation]) -> None:
    """Upsert ``operations`` through an async table client: one transaction per group
    (``transactions``), or single upserts side by side for a group of up to ``SMALL_GROUP``."""
    for group in transactions(operations):
        if len(group) <= SMALL_GROUP:
            await asyncio.gather(*(client.upsert_entity(row, mode=mode) for row, mode in group))
        else:
            await client.submit_transaction(upserts(group))


class TableHistoryWriter:
    """Writes a batch's records: upserts (replace), one transaction per group of rows (single
    upserts for a group of up to ``SMALL_GROUP`` rows). Either way the rows are replaced, so a
    write that failed half-way is completed by the batch's next execution.
    """

    def __init__(self, make_client: Any) -> None:
        self._make_client = make_client
        self._local = threading.local()

    def write(self, records: Sequence[HistoryRecord]) -> None:
        if not records:
            return
        operations = batch_operations(records)
        client = self._client()
        try:
            self._upsert(client, operations)
        except ResourceNotFoundError as exc:  # the table was deleted: create it on the retry
            self._local.client = None
            raise storage_error(exc, "Archiving history records (table missing)") from exc
        except (AzureError, TableTransactionError) as exc:
            raise storage_error(exc, f"Archiving {len(records)} history records") from exc

    @staticmethod
    def _upsert(client: SyncTableClient, operations: list[Operation]) -> None:
        for group in transactions(operations):
            if len(group) <= SMALL_GROUP:
                for row, mode in group:
                    client.upsert_entity(row, mode=mode)
            else:
                client.submit_transaction(upserts(group))

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()

    def _client(self) -> SyncTableClient:
        client: SyncTableClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._make_client()
            with suppress(ResourceExistsError):
                client.create_table()
            self._local.client = client
        return client


class TableHistoryArchive(TableAdapter, HistoryArchive):
    async def append(self, *, records: Sequence[HistoryRecord]) -> None:
        """Upserts (replace): one transaction per group of rows, or single upserts, side by
        side, for a group of up to ``SMALL_GROUP`` rows. Either way the rows are replaced, so a
        write that failed half-way is completed by the batch's next execution."""
        try:
            await self._ensure_table()
            await upsert_all(self._client, batch_operations(records))
        except ResourceNotFoundError as exc:  # the table was deleted: create it on the retry
            self._table_ready = False
            raise storage_error(exc, "Archiving history records (table missing)") from exc
        except AzureError as exc:
            raise storage_error(exc, f"Archiving {len(records)} history records") from exc

    async def page(self, *, agent_id: str, query: HistoryQuery) -> HistoryPage:
        clauses = ["PartitionKey eq @pk", "RowKey lt @end"]
        parameters: dict[str, Any] = {"pk": agent_id, "end": _END}
        if query.continuation is None:
            clauses.append("RowKey ge @start")
            parameters["start"] = HISTORY_PREFIX
        else:
            clauses.append("RowKey gt @after")
            parameters["after"] = query.continuation
        if query.kind is not None:
            clauses.append("kind eq @kind")
            parameters["kind"] = query.kind
        if query.types:
            names = [f"t{i}" for i in range(len(query.types))]
            # spaces around the parentheses: the SDK finds parameters by splitting on spaces
            clauses.append("( " + " or ".join(f"type eq @{n}" for n in names) + " )")
            parameters.update(zip(names, query.types, strict=True))
        if query.since is not None:
            clauses.append("recorded_at ge @since")
            parameters["since"] = query.since
        if query.until is not None:
            clauses.append("recorded_at lt @until")
            parameters["until"] = query.until
        records: list[HistoryRecord] = []
        try:
            await self._ensure_table()
            rows = self._client.query_entities(
                " and ".join(clauses), parameters=parameters, results_per_page=query.limit + 1
            )
            async for row in rows:
                if len(records) == query.limit:
                    return HistoryPage(records, continuation=records[-1].row_key)
                records.append(record_from_row(row))
        except AzureError as exc:
            raise storage_error(exc, f"Reading the history of {agent_id!r}") from exc
        return HistoryPage(records)

    async def has_history(self, *, agent_id: str) -> bool:
        page = await self.page(agent_id=agent_id, query=HistoryQuery(limit=1))
        return bool(page.records)

    async def purge_agent(self, *, agent_id: str) -> int:
        query = "PartitionKey eq @pk and RowKey ge @start and RowKey lt @end"
        parameters = {"pk": agent_id, "start": HISTORY_PREFIX, "end": _END}
        return await self._delete_matching(query, parameters, None, what="history records")

    async def purge(self, *, older_than: datetime, limit: int) -> int:
        # Fixed-width UTC timestamps compare as strings, so the service filters them for us.
        query = "RowKey ge @start and RowKey lt @end and recorded_at lt @cutoff"
        parameters = {"start": HISTORY_PREFIX, "end": _END, "cutoff": format_timestamp(older_than)}
        return await self._delete_matching(query, parameters, limit, what="history records")
