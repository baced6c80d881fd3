"""One entity group transaction, its body written and its answer read here, sent by the SDK client.

The local host's group commit (``devhost.partition_writer``) makes every entity signal three
operations in shared transactions: the signal row's insert, the entity's state upsert and the
signal row's delete. The Tables SDK's ``submit_transaction`` builds a transaction's multipart body
and reads its multipart answer with the standard library's ``email`` package (azure-core's
``set_multipart_mixed`` and ``parts()``); measured against Azurite on this project's 2-core VM,
that is 0.54-0.80 ms of the host's CPU per operation in transactions of 8 to 16, most of what a
broadcast's recipient costs the host. Written here it is 0.08-0.18 ms (docs/PERFORMANCE.md).

Only the body and its answer are ours. The request goes through the SDK client's own pipeline,
so that authentication, retries, the transport and its options stay the SDK's: the generated
client's ``send_request``, reached, as the SDK's own ``submit_transaction`` reaches it, through
``TableClient._client`` and ``_primary_hostname``. Those two names are private to the SDK; the
version is pinned in ``requirements.txt``, and the tests run every kind of operation and refusal
through both this and the SDK against Azurite, so an SDK that moved them fails there first. The format follows the
Azure Storage REST reference, "Performing entity group transactions": a ``multipart/mixed`` batch
holding one change set, each operation an ``application/http`` part; the answer holds one part
per operation, or a single part with the failing operation's status and an OData error whose
message starts with the operation's index (``"1:The specified entity already exists."``).

The operations are the ones the local host makes (``Operation``): insert (``create``, answered
without the row: ``Prefer: return-no-content``), insert-or-replace and insert-or-merge
(``upsert``, by ``UpdateMode``), and unconditional delete. Property values are strings, booleans
and 32-bit integers, the types the local host stores; anything else is refused before a byte is sent.
Failures raise what the SDK raises: ``TableTransactionError`` (with ``index``, ``status_code`` and
``error_code``) for an operation the service refused, ``HttpResponseError`` for the request.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

__all__ = ["Operation", "check_answer", "submit_transaction", "transaction_body"]

Operation = tuple[Any, ...]
"""``("create" | "upsert" | "delete", row[, options])``, as ``TableClient.submit_transaction``
takes it; ``options`` may hold ``mode`` (an upsert's ``UpdateMode``, merge by default) and
``response_preference`` (accepted for the SDK's sake: every insert here asks for no content)."""

_INT32 = range(-(2**31), 2**31)
_STATUS_LINE = re.compile(rb"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_BOUNDARY = re.compile(rb"boundary=([^\s;]+)")


async def submit_transaction(table: TableClient, operations: Sequence[Operation]) -> None:
    """Make ``operations`` (one partition, at most 100, no row twice) all or none."""
    if not operations:
        return
    if len({str(operation[1]["PartitionKey"]) for operation in operations}) != 1:
        raise ValueError("the operations of a transaction must share one partition key")
    batch = f"batch_{uuid.uuid4()}"
    endpoint = f"{table.scheme}://{table._primary_hostname}"  # as the SDK's own transactions
    request = HttpRequest(
        "POST",
        f"{endpoint}/$batch",
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch}",
            "Accept": "application/json",
        },
        content=transaction_body(f"{endpoint}/{table.table_name}", batch, operations),
    )
    response = await table._client.send_request(request, stream=True)
    body = await response.read()
    if response.status_code != 202:
        raise HttpResponseError(
            message=f"the transaction was refused ({response.status_code}): {_text(body)}",
            response=response,
        )
    check_answer(body, len(operations))


def transaction_body(table_url: str, batch: str, operations: Sequence[Operation]) -> bytes:
    """The request body: the batch, its one change set, an ``application/http`` part each."""
    changeset = f"changeset_{uuid.uuid4()}"
    parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n".encode()]
    for index, operation in enumerate(operations):
        parts.append(
            f"--{changeset}\r\nContent-Type: application/http\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: {index}\r\n\r\n".encode()
        )
        parts.append(_request_of(table_url, operation))
        parts.append(b"\r\n")
    parts.append(f"--{changeset}--\r\n\r\n--{batch}--\r\n".encode())
    return b"".join(parts)


def _request_of(table_url: str, operation: Operation) -> bytes:
    kind, row, *rest = operation
    options: dict[str, Any] = rest[0] if rest else {}
    if kind == "create":
        return _http("POST", table_url, _entity_json(row), "Prefer: return-no-content\r\n")
    address = (
        f"{table_url}(PartitionKey='{_key(row['PartitionKey'])}',RowKey='{_key(row['RowKey'])}')"
    )
    if kind == "upsert":  # insert-or-replace (PUT) or insert-or-merge (PATCH): no If-Match
        method = "PUT" if options.get("mode", UpdateMode.MERGE) == UpdateMode.REPLACE else "PATCH"
        return _http(method, address, _entity_json(row), "")
    if kind == "delete":
        return _http("DELETE", address, None, "If-Match: *\r\n")
    raise ValueError(f"unsupported operation {kind!r}")


def _http(method: str, url: str, content: bytes | None, headers: str) -> bytes:
    head = f"{method} {url} HTTP/1.1\r\nDataServiceVersion: 3.0\r\n"
    head += "Accept: application/json;odata=nometadata\r\n" + headers
    if content is None:
        return (head + "\r\n").encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(content)}\r\n\r\n"
    return head.encode() + content


def _key(value: object) -> str:
    """A key in an entity's address: quotes doubled (OData), then percent-encoded."""
    return quote(str(value).replace("'", "''"), safe="")


def _entity_json(row: dict[str, Any]) -> bytes:
    """The row as the service's JSON. Strings, booleans and 32-bit integers are JSON's default
    types, so they go as they are, without type annotations."""
    for name, value in row.items():
        if not (isinstance(value, bool | str) or (isinstance(value, int) and value in _INT32)):
            raise TypeError(
                f"property {name!r} is a {type(value).__name__} ({value!r:.40}): the local "
                "host's transactions store strings, booleans and 32-bit integers"
            )
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()


def check_answer(body: bytes, expected: int) -> None:
    """Raise unless the change set's answer holds a success for each of ``expected`` operations."""
    parts = _answer_parts(body)
    failed = [(status, content) for status, content in parts if not 200 <= status < 300]
    if failed:
        status, content = failed[0]
        code, message = _odata_error(content)
        error = TableTransactionError(message=message)  # the SDK's index: the message's prefix
        error.status_code = status
        error.error_code = code  # type: ignore[attr-defined]  # as the SDK's errors carry it
        raise error
    if len(parts) != expected:
        raise HttpResponseError(
            message=f"the transaction's answer holds {len(parts)} results for {expected} "
            f"operations: {_text(body)}"
        )


def _answer_parts(body: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each operation's answer in the change set's response."""
    boundary = _BOUNDARY.search(body)  # the change set's, inside the batch's only part
    if boundary is None:
        raise HttpResponseError(
            message=f"the transaction's answer has no change set: {_text(body)}"
        )
    results: list[tuple[int, bytes]] = []
    for part in body.split(b"--" + boundary.group(1))[1:]:
        status = _STATUS_LINE.search(part)
        if status is None:
            continue  # the closing delimiter
        _, _, content = part[status.end() :].partition(b"\r\n\r\n")
        results.append((int(status.group(1)), content.strip()))
    return results


def _odata_error(content: bytes) -> tuple[str | None, str]:
    try:
        error = json.loads(content)["odata.error"]
        return str(error.get("code")), str(error["message"]["value"])
    except (ValueError, KeyError, TypeError):
        return None, _text(content)


def _text(body: bytes) -> str:
    return body[:2000].decode("utf-8", "replace")
