"""Delivery receipts in the history table (``TableDeliveryReceipts``): partition = agent id, row
key ``receipt|<event_id>``; a broadcast's in partition ``b|<event_id>``, row key
``receipt|<agent_id>``. The rules (``claim_decision``) and why they are what they are are in
``aos.ports.receipts``; this module applies them with ETag-conditioned writes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode

from aos.adapters.azure.history import SMALL_GROUP, TRANSACTION_ROWS, upsert_all
from aos.adapters.azure.tables import TableAdapter, storage_error
from aos.domain.models import format_timestamp, utc_now
from aos.errors import StorageError
from aos.ports.receipts import (
    _TAKE_OVER,
    Claim,
    DeliveryReceipts,
    broadcast_partition,
    claim_decision,
    receipt_key,
)

__all__ = ["TableDeliveryReceipts"]


_CLAIM_ATTEMPTS = 4


class TableDeliveryReceipts(TableAdapter, DeliveryReceipts):
    async def claim(
        self, *, agent_id: str, event_id: str, message_id: str, generation: str | None = None
    ) -> Claim:
        now = format_timestamp(utc_now())
        row = _claim_row(agent_id, receipt_key(event_id), message_id, generation, now)
        return await self._claim(row)

    async def _claim(self, row: dict[str, Any]) -> Claim:
        """Claim the receipt ``row`` would be, wherever it lives (an agent's partition or a
        broadcast's): insert it, or decide on the one there (``claim_decision``)."""
        try:
            await self._ensure_table()
            for _ in range(_CLAIM_ATTEMPTS):
                try:
                    await self._client.create_entity(row)
                    return Claim.NEW
                except ResourceExistsError:
                    pass
                try:
                    existing: Any = await self._client.get_entity(
                        row["PartitionKey"], row["RowKey"]
                    )
                except ResourceNotFoundError:
                    continue  # deleted (retention, purge) between the two calls: create it
                decision = claim_decision(
                    existing, message_id=row["message_id"], generation=row["generation"] or None
                )
                if decision != _TAKE_OVER:
                    return Claim(decision)
                try:
                    await self._client.update_entity(
                        row,
                        mode=UpdateMode.REPLACE,
                        etag=existing.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                    return Claim.RETRY
                except (ResourceModifiedError, ResourceNotFoundError):
                    continue  # changed meanwhile: decide again on what is there now
        except AzureError as exc:
            raise storage_error(exc, "Delivery receipts") from exc
        raise StorageError(f"Receipt {row['RowKey']!r} kept changing while being claimed; retry")

    async def claim_broadcast(
        self, *, event_id: str, message_id: str, recipients: Sequence[tuple[str, str]]
    ) -> list[Claim]:
        """The recipients' receipts in the broadcast's partition, a transaction per 100 (the
        most one holds; ``_claim_rows``)."""
        partition, now = broadcast_partition(event_id), format_timestamp(utc_now())
        return await self._claim_rows(
            [
                _claim_row(partition, receipt_key(agent_id), message_id, generation, now)
                for agent_id, generation in recipients
            ]
        )

    async def _claim_rows(self, rows: list[dict[str, Any]]) -> list[Claim]:
        """Receipts of one partition, claimed in order, up to 100 at a time together."""
        claims: list[Claim] = []
        for start in range(0, len(rows), TRANSACTION_ROWS):
            claims += await self._claim_together(rows[start : start + TRANSACTION_ROWS])
        return claims

    async def _claim_together(self, rows: list[dict[str, Any]]) -> list[Claim]:
        """New receipts in one transaction; if any exists already the transaction writes nothing
        and each is claimed on its own, which decides what the existing ones mean. A few are
        claimed side by side instead: the SDK's transaction body costs more client CPU than a
        few single writes (``SMALL_GROUP``). A key twice (the same event twice in one batch):
        one after another, in order."""
        if len({row["RowKey"] for row in rows}) < len(rows):
            return [await self._claim(row) for row in rows]
        if len(rows) > SMALL_GROUP:
            try:
                await self._ensure_table()
                await self._client.submit_transaction([("create", row) for row in rows])
                return [Claim.NEW] * len(rows)
            except (TableTransactionError, ResourceExistsError):
                pass  # some were claimed before: decide one by one below
            except AzureError as exc:
                raise storage_error(exc, "Delivery receipts") from exc
        return list(await asyncio.gather(*(self._claim(row) for row in rows)))

    async def broadcast_unclaimed(self, *, event_id: str) -> bool:
        """One query for a single row of the broadcast's partition."""
        query = "PartitionKey eq @partition"
        try:
            await self._ensure_table()
            rows = self._client.query_entities(
                query,
                parameters={"partition": broadcast_partition(event_id)},
                select=["RowKey"],
                results_per_page=1,
            )
            async for _ in rows:
                return False
            return True
        except AzureError as exc:
            raise storage_error(exc, "Delivery receipts") from exc

    async def record_broadcast_signalled(
        self, *, event_id: str, message_id: str, recipients: Sequence[tuple[str, str]]
    ) -> None:
        """Merged into whatever is there (a release the entity wrote meanwhile stays), a
        transaction per 100."""
        partition, now = broadcast_partition(event_id), format_timestamp(utc_now())
        rows = [
            {
                **_claim_row(partition, receipt_key(agent_id), message_id, generation, now),
                "status": "signalled",
            }
            for agent_id, generation in dict(recipients).items()
        ]
        try:
            await self._ensure_table()
            await upsert_all(self._client, [(row, UpdateMode.MERGE) for row in rows])
        except AzureError as exc:
            raise storage_error(exc, "Delivery receipts") from exc

    async def mark_broadcast_signalled(self, *, event_id: str, agent_ids: Sequence[str]) -> None:
        partition = broadcast_partition(event_id)
        keys = [receipt_key(agent_id) for agent_id in dict.fromkeys(agent_ids)]
        for start in range(0, len(keys), TRANSACTION_ROWS):
            await self._mark_together(partition, keys[start : start + TRANSACTION_ROWS])

    async def _mark_together(self, partition: str, keys: list[str]) -> None:
        patches = [{"PartitionKey": partition, "RowKey": k, "status": "signalled"} for k in keys]
        try:
            if len(patches) > SMALL_GROUP:
                try:
                    await self._client.submit_transaction(
                        [("update", patch, {"mode": UpdateMode.MERGE}) for patch in patches]
                    )
                    return
                except (TableTransactionError, ResourceNotFoundError):
                    pass  # one receipt went meanwhile (retention): mark the others one by one
            await asyncio.gather(*(self._mark(patch) for patch in patches))
        except AzureError as exc:
            raise storage_error(exc, "Delivery receipts") from exc

    async def _mark(self, patch: dict[str, Any]) -> None:
        with suppress(ResourceNotFoundError):  # gone (retention): nothing left to confirm
            await self._client.update_entity(patch, mode=UpdateMode.MERGE)

    async def claim_many(
        self, *, agent_id: str, claims: Sequence[tuple[str, str]], generation: str | None = None
    ) -> list[Claim]:
        """The batch's receipts together: they share the agent's partition (``_claim_rows``)."""
        now = format_timestamp(utc_now())
        return await self._claim_rows(
            [
                _claim_row(agent_id, receipt_key(event_id), message_id, generation, now)
                for event_id, message_id in claims
            ]
        )

    async def purge(self, *, older_than: datetime, limit: int) -> int:
        # Fixed-width UTC timestamps compare as strings, so the service filters them for us.
        query = "claimed_at lt @cutoff or failed_at lt @cutoff"
        cutoff = {"cutoff": format_timestamp(older_than)}
        return await self._delete_matching(query, cutoff, limit, what="delivery receipts")

    async def purge_agent(self, *, agent_id: str) -> int:
        query = "PartitionKey eq @pk and RowKey ge 'receipt|' and RowKey lt 'receipt}'"
        return await self._delete_matching(
            query, {"pk": agent_id}, limit=None, what="delivery receipts"
        )


def _claim_row(
    partition: str, row_key: str, message_id: str, generation: str | None, now: str
) -> dict[str, Any]:
    """A claimed receipt: in an agent's partition (the agent id; ``receipt_key(event_id)``) or
    a broadcast's (``broadcast_partition(event_id)``; ``receipt_key(agent_id)``)."""
    return {
        "PartitionKey": partition,
        "RowKey": row_key,
        "message_id": message_id,
        "status": "claimed",
        "claimed_at": now,
        "generation": generation or "",
    }
