"""What the Table adapters share: a client whose table is created on first use.

In Azure the Bicep creates the tables; locally (Azurite) and in tests nobody does, so the first
call creates it, once per client.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceExistsError

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
