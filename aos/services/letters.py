"""Dead letters and poison messages: recording them, listing them, replaying them.

Two paths set a message aside. ``aos.services.delivery`` dead-letters one that can never be delivered as it
is (not JSON, not an envelope, an unknown agent); the Functions host moves one whose delivery kept
failing to ``<events queue>-poison`` after ``maxDequeueCount`` attempts, and the ``record_poison``
queue function records it here (consuming the poison message). Both end up in a ``LetterStore``
(``aos.ports.letters``), where the API pages them newest first.

Replaying puts the original text back on the events queue, unchanged, *then* removes the letter:
a crash in between leaves the letter in place (replay it again), never loses it. Replaying twice is
harmless: the second call finds no letter (404), and if two replays race, the delivery receipts
(``aos.ports.receipts``) drop the second copy of the event. A letter whose original is not a
valid envelope is replayed all the same; it comes back as a new letter with its reason.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from aos.domain.messages import MAX_MESSAGE_BYTES
from aos.domain.models import format_timestamp, utc_now
from aos.errors import LetterNotFoundError, LimitExceededError
from aos.ports.index import Page
from aos.ports.letters import LetterQueue, LetterStore, StoredLetter
from aos.ports.queue import DeadLetter, EventQueue

__all__ = ["DeadLetters", "Replayed", "describe_original"]

logger = logging.getLogger("aos.services.letters")


@dataclass(frozen=True, slots=True)
class Replayed:
    id: str
    event_id: str | None


def describe_original(text: str) -> dict[str, str | None]:
    """``event_id``, ``agent_id`` and ``type`` of the event in an original message, where it has
    them (a letter's original may be anything, so each is ``None`` unless it is a string)."""
    found: dict[str, str | None] = {"event_id": None, "agent_id": None, "type": None}
    try:
        data: Any = json.loads(text)
    except ValueError:
        return found
    event = data.get("event") if isinstance(data, dict) else None
    if isinstance(event, dict):
        for name in found:
            value = event.get(name)
            found[name] = value if isinstance(value, str) else None
    return found


class DeadLetters:
    def __init__(self, *, store: LetterStore, queue: EventQueue) -> None:
        self.store = store
        self.queue = queue

    async def record(self, queue: LetterQueue, letter: DeadLetter) -> StoredLetter:
        return await self.store.add(letter=StoredLetter.of(queue, letter))

    async def record_poison(
        self,
        *,
        body: bytes,
        from_queue: str,
        message_id: str | None,
        dequeue_count: int | None,
    ) -> StoredLetter:
        """Record a message the host moved to the poison queue after repeated failures."""
        try:
            original = body.decode("utf-8")
        except UnicodeDecodeError:
            original = body.decode("latin-1")
        letter = DeadLetter(
            reason=f"delivery failed on every attempt (maxDequeueCount); the Functions host "
            f"moved the message from {from_queue!r} to its poison queue",
            original=original,
            message_id=message_id,
            dequeue_count=dequeue_count,
            dead_lettered_at=format_timestamp(utc_now()),
        )
        stored = await self.record("poison", letter)
        logger.error("poison message %s recorded as letter %s", message_id, stored.id)
        return stored

    async def page(
        self, queue: LetterQueue, *, limit: int, continuation: str | None
    ) -> Page[StoredLetter]:
        return await self.store.page(queue=queue, limit=limit, continuation=continuation)

    async def get(self, queue: LetterQueue, letter_id: str) -> StoredLetter:
        letter = await self.store.get(queue=queue, letter_id=letter_id)
        if letter is None:
            raise LetterNotFoundError(queue, letter_id)
        return letter

    async def replay(self, queue: LetterQueue, letter_id: str) -> Replayed:
        letter = await self.get(queue, letter_id)
        size = len(letter.original.encode())
        if size > MAX_MESSAGE_BYTES:  # only a non-UTF-8 original, re-encoded, can grow this much
            raise LimitExceededError(
                f"The original is {size} bytes as UTF-8; a queue message holds {MAX_MESSAGE_BYTES}"
            )
        await self.queue.send(message=letter.original)
        removed = await self.store.remove(letter=letter)
        event_id = describe_original(letter.original)["event_id"]
        logger.info(
            "replayed %s letter %s (event %s)%s",
            queue,
            letter_id,
            event_id,
            "" if removed else "; another replay removed it first",
        )
        return Replayed(letter_id, event_id)
