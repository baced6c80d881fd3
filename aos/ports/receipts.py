"""Delivery receipts: the durable half of exactly-once delivery.

The agent entity remembers the last few hundred event ids, which catches duplicates that arrive
close together. It cannot catch one that arrives much later: a queue message whose function ran but
whose host died before deleting it comes back after its visibility timeout (10 minutes in Azure),
by which time thousands of other events may have reached the agent; a client that retries a POST it
never got an answer to sends a second message with the same ``event_id``.

So before the queue function signals an agent it *claims* the (agent, event) pair with the queue
message's id and the agent's generation (when it was registered), and the claim is marked
``signalled`` once the event is safe: for an event sent to one agent, by the entity, in the same
write that archives the event as applied (``aos.adapters.azure.history``), so a receipt never says
less than what the agent applied, whenever the delivering process dies; for a broadcast, by the
delivery once the signals are accepted (``mark_broadcast_signalled``):

    no receipt                           → claim it, signal, mark it signalled
    receipt of this message, signalled   → a redelivery of work already done: skip
    receipt of this message, claimed     → the last attempt died before its signal, or the
                                           event is signalled and not yet applied: signal again
                                           (the entity's window drops a repeat that close)
    receipt of another generation        → the agent was deregistered and registered anew since:
                                           a new agent, take the receipt over and signal
    receipt marked failed                → the agent's handler raised on this event (the entity
                                           function marks it, see ``aos.adapters.azure.history``):
                                           the event is sent again, take over and signal
    receipt of another message, claimed  → that delivery died before its signal (storage or the
                                           host failed, its message was poisoned), or its event
                                           is not applied yet: take over and signal
    receipt of another message, signalled → the same event sent twice: skip

Taking over is conditioned on the receipt's ETag, so of two deliveries racing for it one wins. A
take-over can signal an event twice only if the first delivery is still in flight; the entity's
window of recent ids drops the second.

Receipts live in the history table: partition = agent id, row key ``receipt|<event_id>``, for
events sent to one agent. A broadcast's receipts live together instead, in the event's partition
``b|<event_id>`` (row key ``receipt|<agent_id>``; ``broadcast_partition``), where the recipients of one
message are claimed and marked a hundred to a table transaction rather than two requests each
(``claim_broadcast``, ``mark_broadcast_signalled``). The rules are the same in both places. What
that costs: the same event id sent directly to an agent and also broadcast to it is caught by the
agent's window of recent ids only, not by a receipt; and a deregistration with ``purge`` leaves
the agent's broadcast receipts to retention (they hold ids and times, no content). A failed
event's receipt is released in both places (``aos.adapters.azure.history``).

A broadcast that no delivery has claimed yet (its partition is empty: ``broadcast_unclaimed``,
one query) skips the claims: its recipients are signalled, then recorded as claimed by the message
and signalled, a hundred to a transaction (``record_broadcast_signalled``). Nothing is lost to
that: a delivery that dies before recording leaves no receipt, so the next one signals again, as
it would after a claim it never marked; two deliveries of the same event that both find it
unclaimed both signal, close together, and the entity's window drops the second, as it does after
a take-over. It saves a transaction per hundred recipients, the largest part of a broadcast's cost
in the app after the signals.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

__all__ = ["Claim", "DeliveryReceipts", "broadcast_partition", "claim_decision", "receipt_key"]


class Claim(StrEnum):
    NEW = "new"
    RETRY = "retry"
    """This message claimed the event before but may not have signalled, or took over a claim
    that was never confirmed, failed or belongs to an earlier generation: signal (again)."""
    DONE = "done"
    """This message signalled the event already."""
    OTHER = "other"
    """Another message carries the same event: a duplicate."""

    @property
    def should_signal(self) -> bool:
        return self in (Claim.NEW, Claim.RETRY)


class DeliveryReceipts(ABC):
    @abstractmethod
    async def claim(
        self, *, agent_id: str, event_id: str, message_id: str, generation: str | None = None
    ) -> Claim:
        """Claim the (agent, event) pair for a delivery (see the module's table). ``generation``
        identifies the agent's registration; ``None`` when unknown (not compared)."""

    async def claim_many(
        self, *, agent_id: str, claims: Sequence[tuple[str, str]], generation: str | None = None
    ) -> list[Claim]:
        """Claim several ``(event_id, message_id)`` pairs of one agent (a batch of deliveries,
        ``aos.services.batching``), in order; the same answers as ``claim`` one after another.
        Adapters that can write them in one request override this."""
        return [
            await self.claim(
                agent_id=agent_id, event_id=event_id, message_id=message_id, generation=generation
            )
            for event_id, message_id in claims
        ]

    async def claim_broadcast(
        self, *, event_id: str, message_id: str, recipients: Sequence[tuple[str, str]]
    ) -> list[Claim]:
        """Claim ``event_id`` for each ``(agent_id, generation)`` a broadcast message names, in
        order (distinct agents); the same answers as ``claim`` for each. Adapters that keep a
        broadcast's receipts together override this to claim many in one request."""
        return [
            await self.claim(
                agent_id=agent_id, event_id=event_id, message_id=message_id, generation=generation
            )
            for agent_id, generation in recipients
        ]

    async def broadcast_unclaimed(self, *, event_id: str) -> bool:
        """True when no receipt of ``event_id`` as a broadcast exists: no delivery of it (nor of
        a message carrying the same event) has claimed a recipient yet, so this one may signal
        its recipients first and record them after (``record_broadcast_signalled``) instead of
        claiming each before. Adapters that cannot tell in one request answer False (every
        recipient is claimed)."""
        return False

    async def record_broadcast_signalled(
        self, *, event_id: str, message_id: str, recipients: Sequence[tuple[str, str]]
    ) -> None:
        """Record ``(agent_id, generation)`` recipients of a broadcast no delivery had claimed
        (``broadcast_unclaimed``) as claimed by ``message_id`` and signalled; a release written
        meanwhile (the recipient failed the event) is kept. Adapters that keep a broadcast's
        receipts together write many in one request."""
        await self.claim_broadcast(event_id=event_id, message_id=message_id, recipients=recipients)
        await self.mark_broadcast_signalled(
            event_id=event_id, agent_ids=[agent_id for agent_id, _ in recipients]
        )

    @abstractmethod
    async def mark_broadcast_signalled(self, *, event_id: str, agent_ids: Sequence[str]) -> None:
        """Mark the receipts of a broadcast's recipients that were signalled. (An event sent to
        one agent has its receipt marked by the entity, as it archives the event.)"""

    @abstractmethod
    async def purge(self, *, older_than: datetime, limit: int) -> int:
        """Delete at most ``limit`` receipts claimed before ``older_than``; returns how many."""

    @abstractmethod
    async def purge_agent(self, *, agent_id: str) -> int:
        """Delete every receipt of one agent (deregistration with ``?purge=true``)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def receipt_key(event_id: str) -> str:
    return f"receipt|{event_id}"


def broadcast_partition(event_id: str) -> str:
    """Where a broadcast's receipts live (row keys ``receipt_key(agent_id)``): no agent id
    contains ``|``, so this partition is never an agent's."""
    return f"b|{event_id}"


_TAKE_OVER: Literal["take-over"] = "take-over"


def claim_decision(
    existing: Any, *, message_id: str, generation: str | None
) -> Claim | Literal["take-over"]:
    """What an existing receipt means for a delivery by ``message_id`` (the module's table)."""
    if existing.get("message_id") == message_id:
        return Claim.DONE if existing.get("status") == "signalled" else Claim.RETRY
    previous = existing.get("generation") or None
    if generation is not None and previous is not None and previous != generation:
        return _TAKE_OVER
    if existing.get("failed") or existing.get("status") != "signalled":
        return _TAKE_OVER
    return Claim.OTHER
