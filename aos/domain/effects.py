"""What an agent does to the world from inside an operation: events it sends to one agent and
events it publishes to the subscribers of a type (``Effect``).

Effects are collected while the operation runs and leave the entity only when its batch ends
(``aos.functions.entity_function``), as queue messages on the events queue, after the batch's
history is archived. Each emitted event's id is derived from the event that caused it and the
effect's position (``effect_event_id``), so a batch the host executes again emits the same ids and
the delivery receipts drop the repeats: every effect is delivered once. Each emitted event carries
one hop more than its cause (``Event.hops``); delivery dead-letters an event past the hop limit
(``AOS_MAX_HOPS``), which stops two agents that answer each other forever.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aos.domain.messages import QueueMessage, encode_message
from aos.domain.models import Event
from aos.domain.reminders import ReminderControl, ReminderMessage
from aos.domain.turns import TurnControl, TurnMessage

__all__ = [
    "DEFAULT_MAX_HOPS",
    "MAX_EFFECTS_PER_EVENT",
    "Effect",
    "EffectKind",
    "EffectSender",
    "effect_event_id",
]

MAX_EFFECTS_PER_EVENT = 32
"""Sends and publishes one operation may make; more is a ``LimitExceededError``."""

DEFAULT_MAX_HOPS = 16
"""How many times an event may be passed on (``AOS_MAX_HOPS``) before delivery dead-letters it."""

EffectKind = Literal[
    "send", "publish", "reminder_scheduled", "reminder_cancelled", "turn_requested"
]
"""``turn_requested`` starts a turn's orchestration, or wakes a queued one (``aos.domain.turns``)."""


def effect_event_id(cause_id: str, index: int) -> str:
    """The id of the ``index``-th event emitted while handling ``cause_id``: the same inputs give
    the same id, whichever process computes it (32 hex characters, a valid event id)."""
    return hashlib.blake2b(
        f"{cause_id}\x00{index}".encode(), digest_size=16, person=b"aos-effect"
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class Effect:
    """One send, publish or reminder change, ready to travel: ``text`` is its queue message
    (checked for size when the agent made it); ``type`` and ``payload`` are what its history
    record shows (the event sent, or the reminder)."""

    kind: EffectKind
    type: str
    payload: dict[str, Any]
    text: str
    cause_id: str | None
    """The id of the event whose handling made this effect (``None`` outside an event)."""

    @classmethod
    def of_event(cls, kind: EffectKind, event: Event, cause_id: str | None) -> Effect:
        message = QueueMessage(target="agent" if kind == "send" else "subscribers", event=event)
        payload = event.model_dump(mode="json", exclude_none=True)
        return cls(kind, event.type, payload, encode_message(message), cause_id)

    @classmethod
    def of_reminder(
        cls,
        kind: EffectKind,
        control: ReminderControl,
        payload: dict[str, Any],
        cause_id: str | None,
    ) -> Effect:
        text = ReminderMessage(reminder=control).model_dump_json(exclude_none=True)
        return cls(kind, control.reminder_id, payload, text, cause_id)

    @classmethod
    def of_turn(
        cls, kind: EffectKind, control: TurnControl, payload: dict[str, Any], cause_id: str | None
    ) -> Effect:
        text = TurnMessage(turn=control).model_dump_json(exclude_none=True)
        return cls(kind, "aos.turn", payload, text, cause_id)


class EffectSender(Protocol):
    """Send a batch's effects (texts for the events queue) synchronously, from the entity
    function's worker thread, when no event loop runs to send on (``AppRuntime.complete_batch``).
    Raises if they cannot be sent."""

    def send(self, texts: Sequence[str]) -> None: ...
