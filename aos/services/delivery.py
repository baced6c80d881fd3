"""Delivering queued events to agent entities: the queue path's logic, without Azure bindings.

Every message is validated again (the queue may hold anything anyone wrote to it). A message that
can never be delivered -- not JSON, not an AOS envelope, addressed to an unknown agent -- goes to the
dead-letter queue with the reason and the original text, and into the letters table where the API
lists and replays it (``aos.services.letters``), and the trigger completes. An agent whose registration
answered 202 and is still ``registering`` is finished here (``aos.services.registration``), never retried
into the poison queue. Anything that may succeed later (storage unavailable) raises, so the
Functions host retries it and, after ``maxDequeueCount`` attempts, moves it to ``<queue>-poison``.
An event that agents have passed on more than ``max_hops`` times (``AOS_MAX_HOPS``) is
dead-lettered with that reason: it stops agents that answer each other forever. Duplicates are
harmless: a delivery receipt per (agent, event) catches redeliveries and repeated
events however late they come (``aos.ports.receipts``), and the entity's own window of recent
ids catches the rest.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from pydantic import ValidationError

from aos.domain.effects import DEFAULT_MAX_HOPS
from aos.domain.messages import QueueMessage
from aos.domain.models import Event, format_timestamp, utc_now
from aos.domain.reminders import ReminderControl, ReminderMessage, instance_id
from aos.domain.turns import TurnControl, TurnMessage
from aos.errors import InvalidInputError
from aos.ports.entity_client import EntityClient
from aos.ports.index import AgentIndex, IndexEntry, IndexStatus, Recipient
from aos.ports.letters import LetterStore, StoredLetter
from aos.ports.queue import DeadLetter, EventQueue
from aos.ports.receipts import DeliveryReceipts
from aos.ports.reminders import ReminderScheduler
from aos.ports.turns import TurnScheduler
from aos.services.batching import DeliveryBatcher
from aos.services.registration import finish_registration

__all__ = ["BROADCAST_GROUP", "DeliveryOutcome", "EventDelivery"]

logger = logging.getLogger("aos.services.delivery")

BROADCAST_GROUP = 100
"""Recipients of a broadcast whose receipts are claimed (and marked) together: the most rows one
table transaction may hold."""
_GROUPS_IN_FLIGHT = 4
"""Groups of one broadcast message under way at once: enough that claims and marks overlap the
signals of other groups, few enough that a failure leaves little claimed and unsignalled."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    event_id: str | None
    agents: tuple[str, ...] = ()
    """The agents signalled by this delivery."""
    duplicates: tuple[str, ...] = ()
    """The agents that had the event already (a redelivery or a repeated event)."""
    dead_letter_reason: str | None = None


class EventDelivery:
    def __init__(
        self,
        *,
        index: AgentIndex,
        queue: EventQueue,
        entities: EntityClient,
        receipts: DeliveryReceipts,
        letters: LetterStore | None = None,
        max_hops: int = DEFAULT_MAX_HOPS,
        reminders: ReminderScheduler | None = None,
        turns: TurnScheduler | None = None,
        concurrency: int = 16,
        batcher: DeliveryBatcher | None = None,
    ) -> None:
        self.receipts = receipts
        self.batcher = batcher or DeliveryBatcher(receipts)
        """Claims, signals and confirms each recipient's delivery (``aos.services.batching``).
        Shared by the deliveries of one worker, so that events arriving together for one agent
        share a signal; without one given, this delivery's own."""
        self.reminders = reminders
        self.turns = turns
        self.letters = letters
        self.max_hops = max_hops
        self.index = index
        self.queue = queue
        self.entities = entities
        self.concurrency = concurrency
        """How many recipients of one broadcast message are signalled at once."""

    async def deliver(
        self, *, body: bytes, message_id: str | None = None, dequeue_count: int | None = None
    ) -> DeliveryOutcome:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return await self._dead_letter(
                "the message is not UTF-8 text", body.decode("latin-1"), message_id, dequeue_count
            )
        try:
            message = QueueMessage.model_validate_json(text)
        except ValidationError as exc:
            if self.reminders is not None and '"reminder"' in text:
                with suppress(ValidationError):
                    control = ReminderMessage.model_validate_json(text).reminder
                    return await self._control(control)
            if self.turns is not None and '"turn"' in text:
                with suppress(ValidationError):
                    turn = TurnMessage.model_validate_json(text).turn
                    return await self._turn(turn)
            return await self._dead_letter(
                "the message is not a valid AOS event envelope",
                text,
                message_id,
                dequeue_count,
                [e.as_dict() for e in InvalidInputError.from_pydantic(exc).errors],
            )
        event = message.event
        if event.hops > self.max_hops:
            return await self._dead_letter(
                f"hop limit: the event was passed on by agents {event.hops} times; the limit is "
                f"{self.max_hops} (AOS_MAX_HOPS)",
                text,
                message_id,
                dequeue_count,
            )
        payload = event.model_dump(mode="json")
        # Without a message id (never from the Functions host) every delivery is new.
        message_id = message_id or uuid4().hex
        if message.target == "agent":
            agent_id = str(event.agent_id)
            entry = await self.index.get(agent_id=agent_id)
            if entry is None or entry.status is IndexStatus.DEREGISTERING:
                return await self._dead_letter(
                    f"agent {agent_id!r} is not registered", text, message_id, dequeue_count
                )
            done = await self._deliver_to(entry, event, payload, message_id, len(text))
            signalled, duplicates = ([agent_id], []) if done else ([], [agent_id])
        else:
            recipients = await self._recipients(message)
            delivered = await self._broadcast(recipients, event, payload, message_id)
            signalled = [r.agent_id for r, d in zip(recipients, delivered, strict=True) if d]
            duplicates = [r.agent_id for r, d in zip(recipients, delivered, strict=True) if not d]
        logger.info(
            "event %s (%s): signalled %s, already delivered to %s",
            event.event_id,
            event.type,
            _some(signalled),
            _some(duplicates),
            extra={"event_id": event.event_id, "correlation_id": event.correlation_id},
        )
        return DeliveryOutcome(event.event_id, tuple(signalled), tuple(duplicates))

    async def _control(self, control: ReminderControl) -> DeliveryOutcome:
        """A reminder set, replaced or cancelled by its agent: stop the old version's
        orchestration, start the new one's. Both are idempotent, so a redelivered message is
        harmless; the agent's state decides what fires in any case."""
        assert self.reminders is not None
        if control.stop is not None:
            await self.reminders.stop(instance_id=control.stop)
        if control.schedule is not None:
            fire = control.schedule
            await self.reminders.start(
                instance_id=instance_id(fire.agent_id, fire.reminder_id, fire.version),
                fire=fire.model_dump(mode="json"),
            )
        logger.info("reminder %s of %s: controlled", control.reminder_id, control.agent_id)
        return DeliveryOutcome(None, (control.agent_id,))

    async def _turn(self, control: TurnControl) -> DeliveryOutcome:
        """A turn its agent asked for (start its orchestration) or let run (wake it). Starting
        is idempotent and a second wake is ignored by the orchestration, so a redelivered
        message is harmless; a wake for a turn not started yet raises, and comes back."""
        assert self.turns is not None
        if control.start is not None:
            await self.turns.start(
                instance_id=control.turn_id, start=control.start.model_dump(mode="json")
            )
        if control.wake:
            await self.turns.wake(instance_id=control.turn_id)
        logger.info("turn %s of %s: controlled", control.turn_id, control.agent_id)
        return DeliveryOutcome(None, (control.agent_id,))

    async def _deliver_to(
        self, entry: IndexEntry, event: Event, payload: dict[str, Any], message_id: str, size: int
    ) -> bool:
        """Claim and signal one recipient (through the batcher); ``False`` if it had the event
        already."""
        agent_id = entry.agent_id
        if entry.status is IndexStatus.REGISTERING:  # a registration that answered 202
            entry = await finish_registration(self.index, self.entities, entry)
        return await self.batcher.deliver(
            entities=self.entities,
            entry=entry,
            event=event,
            payload={**payload, "agent_id": agent_id},
            message_id=message_id,
            size=size,
        )

    async def _broadcast(
        self,
        recipients: list[Recipient],
        event: Event,
        payload: dict[str, Any],
        message_id: str,
    ) -> list[bool]:
        """A broadcast message's recipients, a group of up to ``BROADCAST_GROUP`` at a time:
        the group's receipts claimed together (one table transaction, in the event's partition),
        its new recipients signalled (at most ``concurrency`` signals in flight across groups),
        the signalled ones marked together. Groups overlap, so one group's claim or mark is
        under way while another's signals go. Per recipient that leaves its signal and a share
        of two transactions, where a delivery of its own costs a claim and a mark each. An event
        no delivery has claimed yet (the usual case: ``broadcast_unclaimed``) skips the claims:
        each group is signalled, then recorded (``aos.ports.receipts``).

        If a signal fails, the group's other recipients still finish and are marked, then the
        first error is raised: the message comes back, and the receipts say who has it."""
        signals = asyncio.Semaphore(self.concurrency)
        groups = asyncio.Semaphore(_GROUPS_IN_FLIGHT)
        unclaimed = await self.receipts.broadcast_unclaimed(event_id=event.event_id)

        async def signal(recipient: Recipient) -> None:
            async with signals:
                await self.entities.signal(
                    agent_id=recipient.agent_id,
                    operation="handle_event",
                    value={**payload, "agent_id": recipient.agent_id},
                )

        async def group(members: list[Recipient]) -> list[bool]:
            async with groups:
                if unclaimed:
                    chosen_flags = [True] * len(members)
                else:
                    claims = await self.receipts.claim_broadcast(
                        event_id=event.event_id,
                        message_id=message_id,
                        recipients=[(r.agent_id, r.generation) for r in members],
                    )
                    chosen_flags = [claim.should_signal for claim in claims]
                chosen = [r for r, flag in zip(members, chosen_flags, strict=True) if flag]
                results = await asyncio.gather(*map(signal, chosen), return_exceptions=True)
                sent = [
                    r
                    for r, result in zip(chosen, results, strict=True)
                    if not isinstance(result, BaseException)
                ]
                if sent and unclaimed:
                    await self.receipts.record_broadcast_signalled(
                        event_id=event.event_id,
                        message_id=message_id,
                        recipients=[(r.agent_id, r.generation) for r in sent],
                    )
                elif sent:
                    await self.receipts.mark_broadcast_signalled(
                        event_id=event.event_id, agent_ids=[r.agent_id for r in sent]
                    )
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
                return chosen_flags

        size = BROADCAST_GROUP
        parts = [recipients[i : i + size] for i in range(0, len(recipients), size)]
        answers = await asyncio.gather(*map(group, parts), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return [done for answer in answers for done in answer]  # type: ignore[union-attr]

    async def _recipients(self, message: QueueMessage) -> list[Recipient]:
        """A broadcast's recipients that are still registered and subscribed to its type: those
        it names (the subscribers when it was published), or, for a broadcast that names none
        (another producer's), the subscribers now. The index checks them a key range at a time
        (``AgentIndex.recipients``), never with a scan of every subscription; one whose
        registration answered 202 and is unfinished is finished here first."""
        event_type = message.event.type
        names = message.recipients
        if names is None:
            names = await self.index.subscribers(event_type=event_type)
        found = await self.index.recipients(event_type=event_type, agent_ids=names)
        return [
            Recipient.of(await finish_registration(self.index, self.entities, r.unfinished))
            if r.unfinished is not None
            else r
            for r in found
        ]

    async def _dead_letter(
        self,
        reason: str,
        original: str,
        message_id: str | None,
        dequeue_count: int | None,
        errors: list[dict[str, object]] | None = None,
    ) -> DeliveryOutcome:
        letter = DeadLetter(
            reason=reason,
            errors=errors or [],
            original=original,
            message_id=message_id,
            dequeue_count=dequeue_count,
            dead_lettered_at=format_timestamp(utc_now()),
        )
        # The queue first: if the table write then fails, the retry writes the queue again (a
        # duplicate there), but the letter reaches the table, where it can be replayed.
        await self.queue.dead_letter(letter=letter)
        if self.letters is not None:
            await self.letters.add(letter=StoredLetter.of("deadletter", letter))
        logger.warning("dead-lettered message %s: %s", message_id, reason)
        return DeliveryOutcome(None, dead_letter_reason=reason)


def _some(agent_ids: list[str], shown: int = 10) -> str:
    """Agent ids for a log line: all of a direct event's, the first few of a broadcast's."""
    if len(agent_ids) <= shown:
        return str(agent_ids)
    return f"{agent_ids[:shown]} and {len(agent_ids) - shown} more"
