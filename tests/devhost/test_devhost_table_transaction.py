"""The local host's own entity group transactions do what the Tables SDK's ``submit_transaction``
does: the same rows stored, the same errors (type, index, status, code) for the same refusals.
Each case runs both against Azurite, the SDK in one partition and ours in another."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient
from helpers import run

from devhost.azurite import Azurite
from devhost.storage_names import UniqueName
from devhost.table_transaction import Operation, check_answer, submit_transaction

pytestmark = pytest.mark.azurite

ODD_KEYS = ["a", "it's", "two words", "pct%20", "é中", "state|agent@x y|001", "a+b&c=d"]

Submit = Callable[[TableClient, list[Operation]], Awaitable[None]]


async def _sdk(table: TableClient, operations: list[Operation]) -> None:
    await table.submit_transaction(operations)


async def _rows(table: TableClient, partition: str) -> dict[str, dict[str, Any]]:
    query = table.query_entities("PartitionKey eq @p", parameters={"p": partition})
    return {
        str(row["RowKey"]): {k: v for k, v in row.items() if k not in ("PartitionKey", "RowKey")}
        async for row in query
    }


@asynccontextmanager
async def new_table(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[TableClient]:
    """A client on a table of its own, created."""
    name = unique_name.table_name("Txn")
    async with TableClient.from_connection_string(azurite.connection_string, name) as table:
        await table.create_table()
        yield table


def _in(partition: str, operations: list[Operation]) -> list[Operation]:
    return [(kind, {**row, "PartitionKey": partition}, *rest) for kind, row, *rest in operations]


def test_each_operation_stores_what_the_sdk_stores(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    async def scenario() -> None:
        async with new_table(azurite, unique_name) as table:
            for partition, submit in (("sdk", _sdk), ("ours", submit_transaction)):
                await table.create_entity({"PartitionKey": partition, "RowKey": "kept", "k": "v"})
                await submit(
                    table,
                    _in(
                        partition,
                        [
                            (
                                "create",
                                {"RowKey": key, "s": 'quote " line\nend é', "b": True, "n": 7},
                                {"response_preference": "return-no-content"},
                            )
                            for key in ODD_KEYS
                        ],
                    ),
                )
                await submit(
                    table,
                    _in(
                        partition,
                        [
                            (
                                "upsert",
                                {"RowKey": "it's", "s": "replaced"},
                                {"mode": UpdateMode.REPLACE},
                            ),
                            ("upsert", {"RowKey": "kept", "m": "merged", "n": 2**31 - 1}),
                            ("delete", {"RowKey": "two words"}),
                            (
                                "upsert",
                                {"RowKey": "new", "n": -(2**31)},
                                {"mode": UpdateMode.REPLACE},
                            ),
                        ],
                    ),
                )
            ours = await _rows(table, "ours")
            assert ours == await _rows(table, "sdk")
            assert ours["it's"] == {"s": "replaced"}
            assert ours["kept"] == {"k": "v", "m": "merged", "n": 2**31 - 1}
            assert "two words" not in ours
            assert ours["é中"]["s"] == 'quote " line\nend é'

    run(scenario())


def test_refusals_raise_what_the_sdk_raises(azurite: Azurite, unique_name: UniqueName) -> None:
    cases: list[list[Operation]] = [
        [("create", {"RowKey": "fresh"}), ("create", {"RowKey": "taken"})],  # exists
        [("delete", {"RowKey": "gone"}), ("create", {"RowKey": "fresh"})],  # not found
        [("create", {"RowKey": "same"}), ("create", {"RowKey": "same"})],  # twice
    ]

    async def outcome(submit: Submit, table: TableClient, ops: list[Operation]) -> tuple[Any, ...]:
        try:
            await submit(table, ops)
        except TableTransactionError as exc:
            return type(exc), exc.index, exc.status_code, getattr(exc, "error_code", None)
        return ("stored",)

    async def scenario() -> None:
        async with new_table(azurite, unique_name) as table:
            for partition in ("sdk", "ours"):
                await table.create_entity({"PartitionKey": partition, "RowKey": "taken"})
            for ops in cases:
                expected = await outcome(_sdk, table, _in("sdk", ops))
                assert expected[0] is TableTransactionError
                assert await outcome(submit_transaction, table, _in("ours", ops)) == expected
            assert await _rows(table, "ours") == {"taken": {}}  # all or none

            missing = TableClient.from_connection_string(
                azurite.connection_string, unique_name.table_name("Missing")
            )
            async with missing:
                ops = _in("p", [("create", {"RowKey": "a"}), ("create", {"RowKey": "b"})])
                expected = await outcome(_sdk, missing, ops)
                assert await outcome(submit_transaction, missing, ops) == expected

    run(scenario())


def test_what_cannot_be_one_transaction_is_refused_before_it_is_sent(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    async def scenario() -> None:
        async with new_table(azurite, unique_name) as table:
            with pytest.raises(ValueError, match="one partition key"):
                await submit_transaction(
                    table,
                    [
                        ("create", {"PartitionKey": "a", "RowKey": "1"}),
                        ("create", {"PartitionKey": "b", "RowKey": "1"}),
                    ],
                )
            for value in (1.5, 2**31, None):
                row = {"PartitionKey": "a", "RowKey": "1", "v": value}
                with pytest.raises(TypeError, match="property 'v' is a"):
                    await submit_transaction(table, [("create", row)])
            with pytest.raises(ValueError, match="unsupported operation 'merge'"):
                await submit_transaction(table, [("merge", {"PartitionKey": "a", "RowKey": "1"})])
            assert await _rows(table, "a") == {}
            with pytest.raises(HttpResponseError):  # a request the service refuses as a whole
                await submit_transaction(
                    table,
                    [("create", {"PartitionKey": "a", "RowKey": f"r{i}"}) for i in range(101)],
                )

    run(scenario())


def _answer(changeset: str, *parts: str) -> bytes:
    """A batch answer as the service writes it: CRLF lines, one change set, a part each."""
    lines = [f"--batchresponse_b1\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"]
    for part in parts:
        lines.append(
            f"--{changeset}\r\nContent-Type: application/http\r\n"
            f"Content-Transfer-Encoding: binary\r\n\r\n{part}\r\n"
        )
    lines.append(f"--{changeset}--\r\n--batchresponse_b1--\r\n")
    return "".join(lines).encode()


def test_answers_in_the_services_format_are_read() -> None:
    """Answers shaped as the REST reference and the OData batch format show them (not only as
    Azurite writes them): each operation's status line, headers, then its body if any."""
    created = (
        "HTTP/1.1 201 Created\r\nContent-ID: 1\r\nContent-Type: application/json\r\n"
        "Location: https://a.table.core.windows.net/t(PartitionKey='p',RowKey='HTTP/1.1 500')\r\n\r\n"
        '{"PartitionKey":"p","RowKey":"HTTP/1.1 500"}'
    )
    no_content = "HTTP/1.1 204 No Content\r\nContent-ID: 2\r\nDataServiceVersion: 1.0;\r\n"
    check_answer(_answer("changesetresponse_c1", created, no_content), 2)
    check_answer(_answer("changeset(77162fcd-b8da)", no_content, no_content), 2)

    refused = (
        "HTTP/1.1 409 Conflict\r\nContent-ID: 2\r\n"
        "Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8\r\n\r\n"
        '{"odata.error":{"code":"EntityAlreadyExists","message":{"lang":"en-US",'
        '"value":"1:The specified entity already exists.\\nRequestId:r"}}}'
    )
    with pytest.raises(TableTransactionError) as caught:
        check_answer(_answer("changesetresponse_c2", refused), 2)
    assert (caught.value.index, caught.value.status_code) == (1, 409)
    assert getattr(caught.value, "error_code", None) == "EntityAlreadyExists"

    with pytest.raises(HttpResponseError, match="1 results for 2 operations"):
        check_answer(_answer("changesetresponse_c3", no_content), 2)
    with pytest.raises(HttpResponseError, match="no change set"):
        check_answer(b"<html>a proxy's page</html>", 1)
