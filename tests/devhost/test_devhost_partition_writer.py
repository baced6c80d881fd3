"""Group commit: concurrent units of writes to one partition share transactions; each unit is
all or none and keeps its own outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient
from helpers import run

from devhost.azurite import Azurite
from devhost.partition_writer import PartitionWriter
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.azurite


class CountingTable:
    """The table client, counting the requests the writer makes."""

    def __init__(self, table: TableClient) -> None:
        self.table = table
        self.transactions: list[int] = []
        self.singles = 0

    async def submit_transaction(self, operations: list[Any]) -> Any:
        self.transactions.append(len(operations))
        return await self.table.submit_transaction(operations)

    async def create_entity(self, row: dict[str, Any], **options: Any) -> Any:
        self.singles += 1
        return await self.table.create_entity(row, **options)

    async def delete_entity(self, partition_key: str, row_key: str) -> None:
        self.singles += 1
        await self.table.delete_entity(partition_key, row_key)

    async def upsert_entity(self, row: dict[str, Any], **options: Any) -> Any:
        self.singles += 1
        return await self.table.upsert_entity(row, **options)


def test_concurrent_writes_share_transactions_and_keep_their_own_outcome(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    async def scenario() -> None:
        async with TableClient.from_connection_string(
            azurite.connection_string, unique_name.table_name("Writer")
        ) as table:
            await table.create_table()
            await table.create_entity({"PartitionKey": "p", "RowKey": "taken", "v": "before"})
            counting = CountingTable(table)
            writer = PartitionWriter(counting, "p")  # type: ignore[arg-type]

            keys = [f"r{i:03d}" for i in range(200)]
            outcomes = await asyncio.gather(
                *(writer.create({"RowKey": key, "v": key}) for key in keys),
                writer.create({"RowKey": "taken", "v": "after"}),
                return_exceptions=True,
            )
            assert outcomes[:-1] == [None] * len(keys)
            assert isinstance(outcomes[-1], ResourceExistsError)  # only its own write failed
            rows = {r["RowKey"]: r["v"] async for r in table.query_entities("PartitionKey eq 'p'")}
            assert rows == {**{key: key for key in keys}, "taken": "before"}
            requests = len(counting.transactions) + counting.singles
            assert requests < 10, (counting.transactions, counting.singles)
            assert max(counting.transactions) <= 100

            # Units of an upsert and a delete, as an entity's commit: each all or none, many
            # in one transaction; a delete whose row is gone already is no error.
            await table.delete_entity("p", keys[5])
            counting.transactions.clear()
            counting.singles = 0
            await asyncio.gather(
                *(
                    writer.submit(
                        [
                            (
                                "upsert",
                                {"RowKey": f"s{i:03d}", "v": i},
                                {"mode": UpdateMode.REPLACE},
                            ),
                            ("delete", {"RowKey": keys[i]}),
                        ]
                    )
                    for i in range(50)
                )
            )
            left = {r["RowKey"] async for r in table.query_entities("PartitionKey eq 'p'")}
            assert left == {*keys[50:], "taken", *(f"s{i:03d}" for i in range(50))}
            requests = len(counting.transactions) + counting.singles
            assert requests < 20, (counting.transactions, counting.singles)
            await writer.drain()

    run(scenario())
