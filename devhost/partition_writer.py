"""Group commit for one table partition: concurrent writes share transactions.

The local host keeps every entity's rows in one partition so that the writes of many entities can
go out together: an entity batch's commit (its state rows, and the deletes of the signal rows it
applied) is a unit that must be atomic, and the commits of entities finishing at the same moment
are one table transaction instead of one each. A request costs the host about 1.2 ms of CPU
whatever it holds, and an operation in a transaction 0.1-0.2 ms more (the transactions are
``devhost.table_transaction``'s): so every group of two operations or more is one transaction.

There is no timer and no added wait: a unit goes out at once if no transaction is in flight, and
the units handed in meanwhile go out together next. Each caller awaits its own unit and sees its
own outcome: when a transaction fails because one row exists already (a create), the unit that
holds it is made alone and the others are sent again together. A delete of a row that is gone
already is no error (a commit sent again after an answer was lost finds its deletes done).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from devhost.table_transaction import Operation, submit_transaction

__all__ = ["Operation", "PartitionWriter"]

_NO_CONTENT = "return-no-content"

TRANSACTION_OPERATIONS = 100
"""Azure Table's limit of operations in one transaction."""
TRANSACTION_CHARS = 500_000
"""Property characters per transaction (several units); a transaction's body may be 4 MiB and a
character can take six bytes of JSON. A unit larger than this still goes, alone."""


@dataclass
class _Unit:
    operations: list[Operation]
    chars: int
    done: asyncio.Future[None] = field(repr=False)

    @property
    def keys(self) -> set[str]:
        return {str(operation[1]["RowKey"]) for operation in self.operations}


class PartitionWriter:
    """Writes units of operations on one partition, each atomically, concurrent ones together."""

    def __init__(self, table: TableClient, partition_key: str) -> None:
        self._table = table
        self._partition_key = partition_key
        self._waiting: deque[_Unit] = deque()
        self._flushing: asyncio.Task[None] | None = None

    async def create(self, row: dict[str, Any]) -> None:
        """Insert one row; ``ResourceExistsError`` if it exists. (The service is asked not to echo
        the row back: a row read back is parsed for nothing, in a transaction's body too.)"""
        await self.submit([("create", row, {"response_preference": _NO_CONTENT})])

    async def submit(self, operations: Sequence[Operation]) -> None:
        """Make ``operations`` (at most 100, no row twice) all or none, in a transaction shared
        with other callers' units; returns once they are stored."""
        if not operations:
            return
        if len(operations) > TRANSACTION_OPERATIONS:
            raise ValueError(f"at most {TRANSACTION_OPERATIONS} operations in one unit")
        placed = [_placed(operation, self._partition_key) for operation in operations]
        chars = sum(
            len(value)
            for operation in placed
            for value in operation[1].values()
            if isinstance(value, str)
        )
        unit = _Unit(placed, chars, asyncio.get_running_loop().create_future())
        self._waiting.append(unit)
        self._flush_soon()
        await unit.done

    async def drain(self) -> None:
        """Wait until every unit handed in so far has been written (or has failed)."""
        while self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)

    def _flush_soon(self) -> None:
        if self._waiting and self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush_next())
            self._flushing.add_done_callback(self._flushed)

    def _flushed(self, _: asyncio.Task[None]) -> None:
        self._flushing = None
        self._flush_soon()

    async def _flush_next(self) -> None:
        await asyncio.sleep(0)  # let the units of callers already running join
        await self._flush(self._take())

    def _take(self) -> list[_Unit]:
        """The next transaction's units, in order, within the limits; no row twice."""
        group: list[_Unit] = []
        keys: set[str] = set()
        operations = chars = 0
        while self._waiting:
            unit = self._waiting[0]
            unit_keys = unit.keys
            if group and (
                operations + len(unit.operations) > TRANSACTION_OPERATIONS
                or chars + unit.chars > TRANSACTION_CHARS
                or keys & unit_keys
            ):
                break
            group.append(self._waiting.popleft())
            keys |= unit_keys
            operations += len(unit.operations)
            chars += unit.chars
        return group

    async def _flush(self, group: list[_Unit]) -> None:
        if not group:
            return
        if len(group) == 1:
            await self._alone(group[0])
            return
        operations = [operation for unit in group for operation in unit.operations]
        try:
            await submit_transaction(self._table, operations)
        except HttpResponseError as exc:
            if not _conflict(exc):
                _fail(group, exc)
                return
            # Nothing was written. Where the error names the operation, its unit is made alone
            # and the rest sent again together; otherwise each half is sent again.
            named = _unit_at(group, exc.index) if isinstance(exc, TableTransactionError) else None
            if named is not None:
                group = [unit for unit in group if unit is not named]
                if await self._alone(named):
                    await self._flush(group)
                    return
            half = len(group) // 2
            await self._flush(group[:half])
            await self._flush(group[half:])
        except BaseException as exc:
            _fail(group, exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for unit in group:
                _settle(unit, None)

    async def _alone(self, unit: _Unit) -> bool:
        """One unit in its own request (one operation) or transaction; its deletes of rows that
        are gone already are dropped and the rest made again. True if it met the conflict."""
        conflict = False
        try:
            try:
                await self._write(unit.operations)
            except HttpResponseError as exc:
                conflict = _conflict(exc)
                deletes = [op for op in unit.operations if op[0] == "delete"]
                if not (conflict and deletes):
                    raise
                # A delete found its row gone (or a create its row there): the writes other
                # than deletes together, then each delete on its own, gone or not.
                await self._write([op for op in unit.operations if op[0] != "delete"])
                for operation in deletes:
                    await self._write([operation])
        except BaseException as exc:
            _settle(unit, exc)
            if not isinstance(exc, Exception):
                raise
        else:
            _settle(unit, None)
        return conflict

    async def _write(self, operations: list[Operation]) -> None:
        if not operations:
            return
        if len(operations) > 1:
            await submit_transaction(self._table, operations)
            return
        kind, row, *options = operations[0]
        if kind == "create":
            await self._table.create_entity(row, **(options[0] if options else {}))
        elif kind == "upsert":
            mode = options[0].get("mode", UpdateMode.MERGE) if options else UpdateMode.MERGE
            await self._table.upsert_entity(row, mode=mode)
        elif kind == "delete":
            with contextlib.suppress(ResourceNotFoundError):
                await self._table.delete_entity(self._partition_key, row["RowKey"])
        else:
            raise ValueError(f"unsupported operation {kind!r}")


def _placed(operation: Operation, partition_key: str) -> Operation:
    kind, row, *options = operation
    return (kind, {**row, "PartitionKey": partition_key}, *options)


def _conflict(exc: HttpResponseError) -> bool:
    """The failure of a row that exists (create) or is gone (delete), not of the request."""
    return isinstance(exc, TableTransactionError) or exc.status_code in (404, 409)


def _unit_at(group: list[_Unit], index: int) -> _Unit | None:
    for unit in group:
        if 0 <= index < len(unit.operations):
            return unit
        index -= len(unit.operations)
    return None


def _settle(unit: _Unit, error: BaseException | None) -> None:
    if unit.done.done():
        return
    if error is None:
        unit.done.set_result(None)
    elif isinstance(error, asyncio.CancelledError):
        unit.done.cancel()
    else:
        unit.done.set_exception(error)


def _fail(group: list[_Unit], error: BaseException) -> None:
    for unit in group:
        _settle(unit, error)
