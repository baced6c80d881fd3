"""Retention and purges of the history table (``AOS_HISTORY_TABLE``) by its keys.

The table's partitions are agent ids; an agent's rows are ``history|<inverted generation>|<inverted
sequence>[|nn]`` (``aos.domain.history``) and ``receipt|<event_id>`` (``aos.ports.receipts``). Where
each run stands is kept in rows of the partition ``~aos``, which no agent id can take (ids start
with a letter or digit, and ``~`` sorts after them all, so the partition walk ends there):

    ~aos | retention          the retention cursor: which partition, which phase, where in it
    ~aos | purge|<agent_id>   one purge: when it was asked for, rows deleted so far, when it ended

**Retention never scans the table.** It walks the partitions one key look-up at a time (the first
row with ``PartitionKey gt <previous>``), and in each partition:

* history: within one generation the sequence grows with time, so inverted sequences are newest
  first and the expired records are the *tail* of the generation's key range. A binary search over
  the sequence (one single-row look-up per step, ``log2(records)`` steps: 22 for 3 million) finds
  where the tail starts; only that key range is then read, keys only, and deleted in transactions
  of 100. The delete query keeps the ``recorded_at`` comparison, so a record that is not expired is
  never deleted even if its time were out of order.
* receipts: their keys are event ids (the delivery path looks them up by id), so time is not in the
  key and the receipts' key range of the partition is read with the ``claimed_at`` filter, resuming
  after the last receipt deleted. This is the one part whose cost grows with the rows kept.

Purges read the agent's two key ranges (keys only) and delete in the same transactions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode

from aos.adapters.azure.tables import TableAdapter, storage_error
from aos.domain.history import HISTORY_PREFIX
from aos.domain.models import format_timestamp, utc_now
from aos.ports.maintenance import PurgeJobs, PurgeStatus, Retention, RetentionRun

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient
    from azure.storage.queue.aio import QueueClient

__all__ = ["MAINTENANCE_PARTITION", "TablePurgeJobs", "TableRetention", "purge_message"]

logger = logging.getLogger("aos.maintenance")

MAINTENANCE_PARTITION = "~aos"
RETENTION_ROW = "retention"
TRANSACTION_ROWS = 100
"""The most operations one table transaction may hold."""
KEYS_PER_QUERY = 1000
"""Keys read per query (a page of the Table service); deleted in transactions of 100."""

_HISTORY_END = HISTORY_PREFIX[:-1] + "}"  # "history}": just after every "history|..." key
_RECEIPTS, _RECEIPTS_END = "receipt|", "receipt}"
_GENERATION_PREFIX = len(HISTORY_PREFIX) + 18  # "history|" + 17 digits + "|"
_SEQUENCE_DIGITS = 15
_MAX_SEQUENCE = 10**_SEQUENCE_DIGITS - 1
_EXPIRED_RECEIPT = "( claimed_at lt @cutoff or failed_at lt @cutoff )"


def purge_message(agent_id: str) -> str:
    """The maintenance queue's message that runs (or continues) the purge of ``agent_id``."""
    return json.dumps({"purge": {"agent_id": agent_id}})


@dataclass
class _Budget:
    deadline: float
    clock: Callable[[], float]

    @classmethod
    def of(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> _Budget:
        return cls(clock() + seconds, clock)

    def spent(self) -> bool:
        return self.clock() >= self.deadline


@dataclass
class _Position:
    """Where retention stands: the partition, its phase (``history``, then ``receipts``), and in
    the receipts phase the last key deleted. ``partition`` ``None``: start a new pass."""

    partition: str | None
    pass_started_at: str = ""
    phase: str = "history"
    after: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> _Position:
        return cls(
            str(row.get("partition") or "") or None,
            str(row.get("pass_started_at") or ""),
            str(row.get("phase") or "history"),
            str(row.get("after") or "") or None,
        )


AfterBatch = Callable[[int, str], Awaitable[None]]
"""Called after each deleted batch with its size and its last row key (saves the progress)."""


class _KeyRanges(TableAdapter):
    """Key-range reads and batched deletes over one table client."""

    async def first(
        self, query: str, parameters: dict[str, Any], select: list[str]
    ) -> dict[str, Any] | None:
        """The first row matching ``query`` (one request: ``$top=1``)."""
        rows = self._client.query_entities(
            query, parameters=parameters, select=select, results_per_page=1
        )
        async for row in rows:
            return dict(row)
        return None

    async def delete_range(
        self,
        partition: str,
        low: str,
        high: str,
        condition: str,
        parameters: dict[str, Any],
        budget: _Budget,
        after_batch: AfterBatch,
        *,
        after: str | None = None,
    ) -> bool:
        """Delete the rows of ``partition`` with ``low <= RowKey < high`` (``after < RowKey``
        when given) that match ``condition``, in transactions of 100. ``False`` if the budget
        ran out first (checked before each batch)."""
        while True:
            if budget.spent():
                return False
            values = {**parameters, "pk": partition, "high": high}
            if after is None:
                values["low"], start = low, "RowKey ge @low"
            else:
                values["after"], start = after, "RowKey gt @after"
            query = f"PartitionKey eq @pk and {start} and RowKey lt @high and {condition}"
            keys: list[str] = []
            rows = self._client.query_entities(
                query, parameters=values, select=["RowKey"], results_per_page=KEYS_PER_QUERY
            )
            async for row in rows:
                keys.append(str(row["RowKey"]))
                if len(keys) == KEYS_PER_QUERY:
                    break
            for begin in range(0, len(keys), TRANSACTION_ROWS):
                if begin and budget.spent():
                    return False
                chunk = keys[begin : begin + TRANSACTION_ROWS]
                await after_batch(await self.delete_keys(partition, chunk), chunk[-1])
            if len(keys) < KEYS_PER_QUERY:
                return True
            after = keys[-1]

    async def delete_keys(self, partition: str, keys: list[str]) -> int:
        """Delete ``keys`` (ascending) in one transaction; returns how many this call deleted.
        If a row is gone meanwhile (another run deleted it) the transaction fails as a whole
        (404): the keys still there are read again and deleted, so each row counts once."""
        while keys:
            operations: list[Any] = [
                ("delete", {"PartitionKey": partition, "RowKey": k}) for k in keys
            ]
            try:
                await self._client.submit_transaction(operations)
            except TableTransactionError as exc:
                if exc.status_code != 404:
                    raise
                keys = await self._existing(partition, keys)
                continue
            return len(keys)
        return 0

    async def _existing(self, partition: str, keys: list[str]) -> list[str]:
        wanted = set(keys)
        rows = self._client.query_entities(
            "PartitionKey eq @pk and RowKey ge @first and RowKey le @last",
            parameters={"pk": partition, "first": keys[0], "last": keys[-1]},
            select=["RowKey"],
        )
        return [str(row["RowKey"]) async for row in rows if str(row["RowKey"]) in wanted]


class TableRetention(Retention):
    """Retention by the keys, resumable (see the module's docstring). One pass visits every
    partition; a run that finishes a pass stops, and the next run starts the next pass."""

    def __init__(self, client: TableClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._table = _KeyRanges(client)
        self._clock = clock

    async def close(self) -> None:
        await self._table.close()

    async def run(
        self, *, older_than: datetime, budget_seconds: float, pass_interval_seconds: float = 0
    ) -> RetentionRun:
        budget = _Budget.of(budget_seconds, self._clock)
        cutoff = format_timestamp(older_than)
        counts = {"history": 0, "receipts": 0}
        partitions = 0
        try:
            await self._table._ensure_table()
            at = _Position.of(await self._cursor())
            if at.partition is None:
                now = utc_now()
                since = format_timestamp(now - timedelta(seconds=pass_interval_seconds))
                if at.pass_started_at and at.pass_started_at > since:
                    return RetentionRun(0, 0, 0, pass_finished=True)  # the last pass is recent
                at = _Position(await self._next_partition(""), format_timestamp(now))

            async def after_batch(count: int, last: str) -> None:
                counts[at.phase] += count
                at.after = last if at.phase == "receipts" else None
                await self._save(at)

            while at.partition is not None:
                partitions += 1
                if at.phase == "history":
                    if not await self._expire_history(at.partition, cutoff, budget, after_batch):
                        break
                    at.phase, at.after = "receipts", None
                if not await self._table.delete_range(
                    at.partition, _RECEIPTS, _RECEIPTS_END, _EXPIRED_RECEIPT, {"cutoff": cutoff},
                    budget, after_batch, after=at.after,
                ):  # fmt: skip
                    break
                at = _Position(await self._next_partition(at.partition), at.pass_started_at)
                if budget.spent():
                    break
            await self._save(at)  # where the next run starts
        except AzureError as exc:
            raise storage_error(exc, "Retention of the history table") from exc
        return RetentionRun(
            counts["history"], counts["receipts"], partitions, pass_finished=at.partition is None
        )

    async def _expire_history(
        self, partition: str, cutoff: str, budget: _Budget, after_batch: AfterBatch
    ) -> bool:
        """Each generation of the partition: find where its expired tail starts, delete it."""
        start = HISTORY_PREFIX
        while True:
            first = await self._table.first(
                "PartitionKey eq @pk and RowKey ge @start and RowKey lt @end",
                {"pk": partition, "start": start, "end": _HISTORY_END},
                ["RowKey", "recorded_at"],
            )
            if first is None:
                return True
            prefix = str(first["RowKey"])[:_GENERATION_PREFIX]
            end = prefix[:-1] + "}"
            tail = await self._expired_tail(partition, prefix, end, first, cutoff)
            if tail is not None and not await self._table.delete_range(
                partition,
                tail,
                end,
                "recorded_at lt @cutoff",
                {"cutoff": cutoff},
                budget,
                after_batch,
            ):
                return False
            start = end

    async def _expired_tail(
        self, partition: str, prefix: str, end: str, first: dict[str, Any], cutoff: str
    ) -> str | None:
        """The lowest key of the generation's expired records (``None``: none expired), by
        binary search over the inverted sequence: ``lo`` is a position whose record is kept,
        ``hi`` one from which on every record is expired (or there is none)."""
        if str(first.get("recorded_at", "")) < cutoff:
            return prefix
        lo, hi = _sequence(str(first["RowKey"]), prefix), _MAX_SEQUENCE + 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            row = await self._table.first(
                "PartitionKey eq @pk and RowKey ge @start and RowKey lt @end",
                {"pk": partition, "start": f"{prefix}{mid:0{_SEQUENCE_DIGITS}d}", "end": end},
                ["RowKey", "recorded_at"],
            )
            if row is None or str(row.get("recorded_at", "")) < cutoff:
                hi = mid
            else:
                lo = max(mid, _sequence(str(row["RowKey"]), prefix))
        return None if hi > _MAX_SEQUENCE else f"{prefix}{hi:0{_SEQUENCE_DIGITS}d}"

    async def _next_partition(self, after: str) -> str | None:
        row = await self._table.first(
            "PartitionKey gt @after", {"after": after}, ["PartitionKey", "RowKey"]
        )
        if row is None or str(row["PartitionKey"]) >= MAINTENANCE_PARTITION:
            return None
        return str(row["PartitionKey"])

    async def _cursor(self) -> dict[str, Any]:
        try:
            row = await self._table._client.get_entity(MAINTENANCE_PARTITION, RETENTION_ROW)
        except ResourceNotFoundError:
            return {}
        return dict(row)

    async def _save(self, at: _Position) -> None:
        row = {
            "PartitionKey": MAINTENANCE_PARTITION,
            "RowKey": RETENTION_ROW,
            "partition": at.partition or "",
            "phase": at.phase,
            "after": at.after or "",
            "pass_started_at": at.pass_started_at,
            "updated_at": format_timestamp(utc_now()),
        }
        await self._table._client.upsert_entity(row, mode=UpdateMode.REPLACE)


def _sequence(row_key: str, prefix: str) -> int:
    return int(row_key[len(prefix) : len(prefix) + _SEQUENCE_DIGITS])


class TablePurgeJobs(PurgeJobs):
    """Purge jobs as rows ``~aos | purge|<agent_id>``, run by messages on the maintenance queue
    (``<AOS_EVENTS_QUEUE>-maintenance``): the HTTP request only records the job and queues its
    message, so it answers at once however much history the agent has."""

    def __init__(
        self,
        client: TableClient,
        queue: QueueClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._table = _KeyRanges(client)
        self._queue = queue
        self._queue_ready = False

    async def close(self) -> None:
        await self._table.close()
        await self._queue.close()

    async def start(self, *, agent_id: str) -> PurgeStatus:
        """A running purge keeps its counts and continues with the later ``requested_at``; the
        run at work notices the change (ETag) and leaves the rest to the message queued here."""
        now = format_timestamp(utc_now())

        def started(existing: dict[str, Any] | None) -> dict[str, Any]:
            running = existing is not None and not existing.get("finished_at")
            return {
                "agent_id": agent_id,
                "requested_at": now,
                "updated_at": now,
                "history_deleted": int(existing["history_deleted"]) if running and existing else 0,
                "receipts_deleted": int(existing["receipts_deleted"])
                if running and existing
                else 0,
                "finished_at": "",
            }

        try:
            await self._table._ensure_table()
            row = await self._change(agent_id, started)
        except AzureError as exc:
            raise storage_error(exc, f"Recording the purge of {agent_id!r}") from exc
        await self.resume(agent_id=agent_id)
        return _status(row)

    async def resume(self, *, agent_id: str) -> None:
        try:
            if not self._queue_ready:
                with suppress(ResourceExistsError):
                    await self._queue.create_queue()
                self._queue_ready = True
            await self._queue.send_message(purge_message(agent_id))
        except AzureError as exc:
            raise storage_error(exc, f"Queueing the purge of {agent_id!r}") from exc

    async def status(self, *, agent_id: str) -> PurgeStatus | None:
        try:
            await self._table._ensure_table()
            found = await self._row(agent_id)
        except AzureError as exc:
            raise storage_error(exc, f"Reading the purge of {agent_id!r}") from exc
        return None if found is None else _status(found[0])

    async def run(self, *, agent_id: str, budget_seconds: float) -> PurgeStatus | None:
        """One run at a time does the work: every update of the job row is conditioned on the
        ETag this run last saw, so a second run (a message delivered twice, a DELETE repeated)
        that changed the row makes this one add its last batch to the row and stop (``None``)."""
        budget = _Budget.of(budget_seconds, self._clock)
        try:
            await self._table._ensure_table()
            found = await self._row(agent_id)
            if found is None or found[0].get("finished_at"):
                return None if found is None else _status(found[0])
            row, etag = found
            cutoff = {"cutoff": str(row["requested_at"])}

            async def save(changes: dict[str, Any]) -> None:
                nonlocal etag
                row.update(changes, updated_at=format_timestamp(utc_now()))
                saved = await self._table._client.update_entity(
                    _plain(row),
                    mode=UpdateMode.REPLACE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
                etag = str(saved["etag"])

            def counting(column: str) -> AfterBatch:
                async def after_batch(count: int, last: str) -> None:
                    try:
                        await save({column: int(row[column]) + count})
                    except ResourceModifiedError:

                        def add(current: dict[str, Any] | None) -> dict[str, Any]:
                            base = current if current is not None else row
                            return {**base, column: int(base[column]) + count}

                        await self._change(agent_id, add)
                        raise _SupersededError from None

                return after_batch

            done = await self._table.delete_range(
                agent_id, HISTORY_PREFIX, _HISTORY_END, "recorded_at le @cutoff", cutoff,
                budget, counting("history_deleted"),
            ) and await self._table.delete_range(
                agent_id, _RECEIPTS, _RECEIPTS_END, "claimed_at le @cutoff", cutoff,
                budget, counting("receipts_deleted"),
            )  # fmt: skip
            if done:
                await save({"finished_at": format_timestamp(utc_now())})
        except (_SupersededError, ResourceModifiedError):
            return None
        except AzureError as exc:
            raise storage_error(exc, f"Purging the history of {agent_id!r}") from exc
        return _status(row)

    async def _row(self, agent_id: str) -> tuple[dict[str, Any], str] | None:
        try:
            entity = await self._table._client.get_entity(MAINTENANCE_PARTITION, _job_key(agent_id))
        except ResourceNotFoundError:
            return None
        return dict(entity), str(entity.metadata["etag"])

    async def _change(
        self, agent_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read the job row, apply ``change``, write it back if nobody changed it meanwhile
        (else read again)."""
        while True:
            found = await self._row(agent_id)
            row = _plain(change(None if found is None else found[0]))
            try:
                if found is None:
                    await self._table._client.create_entity(row)
                else:
                    await self._table._client.update_entity(
                        row,
                        mode=UpdateMode.REPLACE,
                        etag=found[1],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                continue
            return row


class _SupersededError(Exception):
    """Another run of the same purge changed the job row: this one stops."""


def _job_key(agent_id: str) -> str:
    return f"purge|{agent_id}"


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("agent_id", "requested_at", "updated_at", "history_deleted", "receipts_deleted")
    plain = {k: row[k] for k in keep}
    plain.update(
        PartitionKey=MAINTENANCE_PARTITION,
        RowKey=_job_key(str(row["agent_id"])),
        finished_at=row.get("finished_at") or "",
    )
    return plain


def _status(row: dict[str, Any]) -> PurgeStatus:
    return PurgeStatus(
        agent_id=str(row["agent_id"]),
        requested_at=str(row["requested_at"]),
        updated_at=str(row["updated_at"]),
        history_deleted=int(row["history_deleted"]),
        receipts_deleted=int(row["receipts_deleted"]),
        finished_at=str(row.get("finished_at") or "") or None,
    )
