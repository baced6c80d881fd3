"""What the Table adapters share: a client whose table is created on first use.

In Azure the Bicep creates the tables; locally (Azurite) and in tests nobody does, so the first
call creates it, once per client.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError

from aos.errors import AOSError, InvalidInputError, PayloadTooLargeError, StorageError

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient

__all__ = ["TableAdapter", "storage_error"]

logger = logging.getLogger("aos.storage")

_REFUSED_AS_INVALID = frozenset({400, 414, 431})
"""Statuses by which Storage refuses a request it was sent as malformed or too long: a request
that got there with the caller's input (a filter with too many comparisons, say) is the caller's
400. Other statuses are Storage's trouble: a 503, which a retry may fix."""


def storage_error(exc: AzureError, what: str) -> AOSError:
    """The AOS error for an SDK error of ``what`` (``"Reading the history of 'a1'"``). The SDK's
    message names the account's host and the request: it is logged, never shown to callers.
    The one translation of SDK errors for every Storage adapter (the queue one too)."""
    logger.warning("%s failed: %s", what, exc)
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        status, code = (
            exc.status_code,
            getattr(exc, "error_code", None) or exc.reason or "no error code",
        )
        if status in _REFUSED_AS_INVALID:
            return InvalidInputError(
                f"{what} failed: Storage refused the request ({status} {code})"
            )
        if status == 413:
            return PayloadTooLargeError(f"{what} failed: Storage refused the size ({code})")
        return StorageError(f"{what} failed: Storage answered {status} {code}")
    return StorageError(f"{what} failed: Storage unreachable ({type(exc).__name__})")


class TableAdapter:
    def __init__(self, client: TableClient) -> None:
        self._client = client
        self._table_ready = False

    async def close(self) -> None:
        await self._client.close()

    async def _ensure_table(self) -> None:
        if not self._table_ready:
            with suppress(ResourceExistsError):
                await self._client.create_table()
            self._table_ready = True

    async def _delete_matching(
        self, query: str, parameters: dict[str, str], limit: int | None, *, what: str
    ) -> int:
        """Delete matching rows (at most ``limit``) in single-partition transactions of up to 100,
        the most one transaction may hold: bounded work per call."""
        deleted = 0
        try:
            await self._ensure_table()
            rows = self._client.query_entities(
                query, parameters=parameters, select=["PartitionKey", "RowKey"]
            )
            by_partition: dict[str, list[str]] = {}
            found = 0
            async for row in rows:
                by_partition.setdefault(row["PartitionKey"], []).append(row["RowKey"])
                found += 1
                if limit is not None and found >= limit:
                    break
            for partition, keys in by_partition.items():
                for start in range(0, len(keys), 100):
                    chunk = keys[start : start + 100]
                    await self._client.submit_transaction(
                        [("delete", {"PartitionKey": partition, "RowKey": k}) for k in chunk]
                    )
                    deleted += len(chunk)
        except AzureError as exc:
            raise storage_error(exc, f"Deleting {what}") from exc
        return deleted
