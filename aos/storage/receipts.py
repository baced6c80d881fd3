"""Delivery receipts: the durable half of exactly-once delivery.

The agent entity remembers the last few hundred event ids, which catches duplicates that arrive
close together. It cannot catch one that arrives much later: a queue message whose function ran but
whose host died before deleting it comes back after its visibility timeout (10 minutes in Azure),
by which time thousands of other events may have reached the agent; a client that retries a POST it
never got an answer to sends a second message with the same ``event_id``.

So before the queue function signals an agent it *claims* the (agent, event) pair with the queue
message's id, and marks the claim once the signal is accepted:

    no receipt                      → claim it, signal, mark it signalled
    receipt of this message, signalled   → a redelivery of work already done: skip
    receipt of this message, claimed     → the last attempt died before or while signalling:
                                           signal again (the entity's window catches the rare
                                           double signal, which arrives right after the first)
    receipt of another message      → the same event sent twice: skip

Receipts live in the history table (partition = agent id, row key ``receipt|<event_id>``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from aos.errors import StorageError
from aos.models import format_timestamp, utc_now
from aos.storage.tables import TableAdapter, storage_error

if TYPE_CHECKING:
    pass

__all__ = ["Claim", "DeliveryReceipts", "TableDeliveryReceipts"]


class Claim(StrEnum):
    NEW = "new"
    RETRY = "retry"
    """This message claimed the event before but may not have signalled: signal (again)."""
    DONE = "done"
    """This message signalled the event already."""
    OTHER = "other"
    """Another message carries the same event: a duplicate."""

    @property
    def should_signal(self) -> bool:
        return self in (Claim.NEW, Claim.RETRY)


class DeliveryReceipts(ABC):
    @abstractmethod
    async def claim(self, *, agent_id: str, event_id: str, message_id: str) -> Claim: ...

    @abstractmethod
    async def mark_signalled(self, *, agent_id: str, event_id: str) -> None: ...

    @abstractmethod
    async def purge(self, *, older_than: datetime, limit: int) -> int:
        """Delete at most ``limit`` receipts claimed before ``older_than``; returns how many."""

    @abstractmethod
    async def purge_agent(self, *, agent_id: str) -> int:
        """Delete every receipt of one agent (deregistration with ``?purge=true``)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def _key(event_id: str) -> str:
    return f"receipt|{event_id}"


class TableDeliveryReceipts(TableAdapter, DeliveryReceipts):
    async def claim(self, *, agent_id: str, event_id: str, message_id: str) -> Claim:
        row = {
            "PartitionKey": agent_id,
            "RowKey": _key(event_id),
            "message_id": message_id,
            "status": "claimed",
            "claimed_at": format_timestamp(utc_now()),
        }
        try:
            await self._ensure_table()
            try:
                await self._client.create_entity(row)
                return Claim.NEW
            except ResourceExistsError:
                existing: Any = await self._client.get_entity(agent_id, _key(event_id))
        except (ResourceNotFoundError, ResourceExistsError) as exc:
            raise StorageError(f"Receipt for {event_id!r} changed while being read") from exc
        except AzureError as exc:
            raise storage_error(exc, "Delivery receipts") from exc
        if existing.get("message_id") != message_id:
            return Claim.OTHER
        return Claim.DONE if existing.get("status") == "signalled" else Claim.RETRY

    async def mark_signalled(self, *, agent_id: str, event_id: str) -> None:
        patch = {"PartitionKey": agent_id, "RowKey": _key(event_id), "status": "signalled"}
        try:
            await self._client.update_entity(patch, mode=UpdateMode.MERGE)
        except AzureError as exc:
            raise storage_error(exc, "Delivery receipts") from exc

    async def purge(self, *, older_than: datetime, limit: int) -> int:
        # Fixed-width UTC timestamps compare as strings, so the service filters them for us.
        query = "claimed_at lt @cutoff"
        cutoff = {"cutoff": format_timestamp(older_than)}
        return await self._delete_matching(query, cutoff, limit, what="delivery receipts")

    async def purge_agent(self, *, agent_id: str) -> int:
        query = "PartitionKey eq @pk and RowKey ge 'receipt|' and RowKey lt 'receipt}'"
        return await self._delete_matching(
            query, {"pk": agent_id}, limit=None, what="delivery receipts"
        )
