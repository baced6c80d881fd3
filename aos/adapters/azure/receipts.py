"""Delivery receipts: the durable half of exactly-once delivery.

The agent entity remembers the last few hundred event ids, which catches duplicates that arrive
close together. It cannot catch one that arrives much later: a queue message whose function ran but
whose host died before deleting it comes back after its visibility timeout (10 minutes in Azure),
by which time thousands of other events may have reached the agent; a client that retries a POST it
never got an answer to sends a second message with the same ``event_id``.

So before the queue function signals an agent it *claims* the (agent, event) pair with the queue
message's id and the agent's generation (when it was registered), and marks the claim once the
signal is accepted:

    no receipt                           → claim it, signal, mark it signalled
    receipt of this message, signalled   → a redelivery of work already done: skip
    receipt of this message, claimed     → the last attempt died before or while signalling:
                                           signal again
    receipt of another generation        → the agent was deregistered and registered anew since:
                                           a new agent, take the receipt over and signal
    receipt marked failed                → the agent's handler raised on this event (the entity
                                           function marks it, see ``aos.adapters.azure.history``):
                                           the event is sent again, take over and signal
    receipt of another message, claimed  → that delivery never confirmed its signal (storage or
                                           the host failed, its message was poisoned): take over
                                           and signal
    receipt of another message, signalled → the same event sent twice: skip

Taking over is conditioned on the receipt's ETag, so of two deliveries racing for it one wins. A
take-over can signal an event twice only if the first delivery is still in flight; the entity's
window of recent ids drops the second.

Receipts live in the history table (partition = agent id, row key ``receipt|<event_id>``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    pass
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
