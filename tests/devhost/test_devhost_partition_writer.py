"""Group commit: concurrent units of writes to one partition share transactions; each unit is
all or none and keeps its own outcome."""

from __future__ import annotations

import asyncio

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline import PipelineRequest
from azure.core.rest import HttpRequest
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient
from helpers import run

from devhost.azurite import Azurite
from devhost.partition_writer import PartitionWriter
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.azurite


class RequestCounter:
    """Counts the requests the writer's table client makes: transactions (by their operations)
    and single-row requests. Installed as the client's ``raw_request_hook``."""

    def __init__(self) -> None:
        self.transactions: list[int] = []
        self.singles = 0

    def __call__(self, request: PipelineRequest[HttpRequest]) -> None:
        http = request.http_request
        if http.url.endswith("/$batch"):
            self.transactions.append(http.content.count(b"Content-ID:"))
        else:
            self.singles += 1

    def clear(self) -> None:
        self.transactions.clear()
        self.singles = 0


def test_concurrent_writes_share_transactions_and_keep_their_own_outcome(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    counting = RequestCounter()

    async def scenario() -> None:
        async with TableClient.from_connection_string(
            azurite.connection_string, unique_name.table_name("Writer"), raw_request_hook=counting
        ) as table:
            await table.create_table()
            await table.create_entity({"PartitionKey": "p", "RowKey": "taken", "v": "before"})
            counting.clear()
            writer = PartitionWriter(table, "p")

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
            counting.clear()
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
