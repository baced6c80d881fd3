"""Delivery receipts in the history table (``TableDeliveryReceipts``): partition = agent id, row
key ``receipt|<event_id>``. The rules (``claim_decision``) and why they are what they are are in
``aos.ports.receipts``; this module applies them with ETag-conditioned writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from aos.adapters.azure.tables import TableAdapter, storage_error
from aos.domain.models import format_timestamp, utc_now
from aos.errors import StorageError
from aos.ports.receipts import _TAKE_OVER, Claim, DeliveryReceipts, claim_decision, receipt_key

__all__ = ["TableDeliveryReceipts"]


_CLAIM_ATTEMPTS = 4


class TableDeliveryReceipts(TableAdapter, DeliveryReceipts):
    async def claim(
        self, *, agent_id: str, event_id: str, message_id: str, generation: str | None = None
    ) -> Claim:
        row = {
            "PartitionKey": agent_id,
            "RowKey": receipt_key(event_id),
            "message_id": message_id,
            "status": "claimed",
            "claimed_at": format_timestamp(utc_now()),
            "generation": generation or "",
        }
        try:
            await self._ensure_table()
            for _ in range(_CLAIM_ATTEMPTS):
                try:
                    await self._client.create_entity(row)
                    return Claim.NEW
                except ResourceExistsError:
                    pass
                try:
                    existing: Any = await self._client.get_entity(agent_id, receipt_key(event_id))
                except ResourceNotFoundError:
                    continue  # deleted (retention, purge) between the two calls: create it
                decision = claim_decision(existing, message_id=message_id, generation=generation)
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
        raise StorageError(f"Receipt for {event_id!r} kept changing while being claimed; retry")

    async def mark_signalled(self, *, agent_id: str, event_id: str) -> None:
        patch = {"PartitionKey": agent_id, "RowKey": receipt_key(event_id), "status": "signalled"}
        try:
            await self._client.update_entity(patch, mode=UpdateMode.MERGE)
        except AzureError as exc:
            raise storage_error(exc, "Delivery receipts") from exc

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
