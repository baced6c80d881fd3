"""What the Table adapters share: a client whose table is created on first use.

In Azure the Bicep creates the tables; locally (Azurite) and in tests nobody does, so the first
call creates it, once per client.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, ResourceExistsError

from aos.errors import StorageError

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient

__all__ = ["TableAdapter"]


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
            raise StorageError(f"Deleting {what} failed: {exc}") from exc
        return deleted
