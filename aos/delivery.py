"""Delivering queued events to agent entities: the queue path's logic, without Azure bindings.

Every message is validated again (the queue may hold anything anyone wrote to it). A message that
can never be delivered -- not JSON, not an AOS envelope, addressed to an unknown agent -- goes to the
dead-letter queue with the reason and the original text, and the trigger completes. Anything that
may succeed later (storage unavailable, a registration still finishing) raises, so the Functions
host retries it and, after ``maxDequeueCount`` attempts, moves it to ``<queue>-poison``.
Re-delivery is harmless: the entity applies each ``event_id`` once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from aos.errors import AgentNotReadyError
from aos.models import format_timestamp, utc_now
from aos.storage.entities import EntityClient
from aos.storage.index import AgentIndex, IndexStatus
from aos.storage.queues import DeadLetter, EventQueue, QueueMessage

__all__ = ["DeliveryOutcome", "EventDelivery"]

logger = logging.getLogger("aos.delivery")


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    event_id: str | None
    agents: tuple[str, ...] = ()
    dead_letter_reason: str | None = None


class EventDelivery:
    def __init__(self, *, index: AgentIndex, queue: EventQueue, entities: EntityClient) -> None:
        self.index = index
        self.queue = queue
        self.entities = entities

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
            errors = exc.errors(include_url=False, include_input=False)
            return await self._dead_letter(
                "the message is not a valid AOS event envelope",
                text,
                message_id,
                dequeue_count,
                [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors],
            )
        event = message.event
        payload = event.model_dump(mode="json")
        log = {"event_id": event.event_id, "correlation_id": event.correlation_id}

        if message.target == "agent":
            agent_id = str(event.agent_id)
            entry = await self.index.get(agent_id=agent_id)
            if entry is None or entry.status is IndexStatus.DEREGISTERING:
                return await self._dead_letter(
                    f"agent {agent_id!r} is not registered", text, message_id, dequeue_count
                )
            if entry.status is IndexStatus.REGISTERING:
                raise AgentNotReadyError(agent_id)
            await self.entities.signal(agent_id=agent_id, operation="handle_event", value=payload)
            logger.info("event %s -> agent %s", event.event_id, agent_id, extra=log)
            return DeliveryOutcome(event.event_id, (agent_id,))

        agents = await self.index.subscribers(event_type=event.type)
        for agent_id in agents:
            await self.entities.signal(
                agent_id=agent_id,
                operation="handle_event",
                value={**payload, "agent_id": agent_id},
            )
        logger.info(
            "event %s (%s) -> %d subscribers", event.event_id, event.type, len(agents), extra=log
        )
        return DeliveryOutcome(event.event_id, tuple(agents))

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
        await self.queue.dead_letter(letter=letter)
        logger.warning("dead-lettered message %s: %s", message_id, reason)
        return DeliveryOutcome(None, dead_letter_reason=reason)
