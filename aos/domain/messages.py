"""What travels on the events queue: the message envelope, and what makes one deliverable.

A message on ``aos-events`` is one JSON envelope (``QueueMessage``): an event and where it goes,
either one agent or every subscriber of the event's type. Messages are plain JSON text (host.json
sets the queue extension's ``messageEncoding`` to ``none``), so they are readable in Storage
Explorer and the 64 KB message limit applies to the JSON itself.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from aos.domain.models import AgentId, Event
from aos.errors import PayloadTooLargeError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_SIGNAL_CHARS",
    "QueueMessage",
    "broadcast_messages",
    "encode_message",
    "signal_chars",
]


MAX_MESSAGE_BYTES = 64 * 1024


"""Azure Queue Storage's limit for one message."""


MAX_SIGNAL_CHARS = 190_000


"""The most an event may take as the ``handle_event`` signal that delivers it. The durable client
encodes the input twice (``json.dumps(json.dumps(...))``), so a character outside ASCII that is
3 or 4 bytes in the queue message becomes 7 or 14 characters in the signal; the local host stores
a signal of up to 192,000 characters (in Azure, large messages go to blobs)."""


_LONGEST_AGENT_ID = "a" * 64


class QueueMessage(BaseModel):
    """The envelope on the events queue. ``target`` ``agent`` needs ``event.agent_id``.

    A broadcast (``subscribers``) names its ``recipients``: the agents subscribed when it was
    published, so that the count the publisher was told is the set that receives it, and an agent
    that subscribes (or re-registers) while the message waits does not receive an event published
    before it existed. A broadcast without ``recipients`` (written by another producer) goes to the
    subscribers at delivery time.
    """

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    target: Literal["agent", "subscribers"]
    event: Event
    recipients: list[AgentId] | None = None

    @model_validator(mode="after")
    def _addressed(self) -> QueueMessage:
        if self.target == "agent" and self.event.agent_id is None:
            raise ValueError("an event for one agent needs event.agent_id")
        if self.target == "agent" and self.recipients is not None:
            raise ValueError("recipients are for broadcasts (target 'subscribers') only")
        return self


def encode_message(message: QueueMessage) -> str:
    """The message as queue text. ``PayloadTooLargeError`` unless it is deliverable: at most
    64 KB as UTF-8 bytes on the queue, and at most ``MAX_SIGNAL_CHARS`` as the signal that
    delivers it (the size that really travels, escaped, not the number of characters)."""
    text = message.model_dump_json(exclude_none=True)
    size = len(text.encode())
    if size > MAX_MESSAGE_BYTES:
        raise PayloadTooLargeError(
            f"The event would be a {size}-byte queue message; the limit is {MAX_MESSAGE_BYTES}"
        )
    signal = signal_chars(message.event.model_dump(mode="json"), message.event.agent_id)
    if signal > MAX_SIGNAL_CHARS:
        raise PayloadTooLargeError(
            f"The event would be a {signal}-character signal to its agent (JSON-escaped twice: "
            f"text outside ASCII counts up to 14 each); the limit is {MAX_SIGNAL_CHARS}"
        )
    return text


def signal_chars(event: dict[str, Any], agent_id: str | None) -> int:
    """The length of the ``handle_event`` signal's body that delivers ``event`` to an agent (a
    broadcast's: to one with the longest possible id)."""
    payload = {**event, "agent_id": agent_id or _LONGEST_AGENT_ID}
    return len(json.dumps(json.dumps(payload)))


def broadcast_messages(event: Event, recipients: list[str]) -> list[str]:
    """Queue texts that together carry ``event`` to every recipient: as few as the 64 KB limit
    allows (one, unless the subscribers are many or the event is large). Sizes are UTF-8 bytes."""
    empty = encode_message(QueueMessage(target="subscribers", event=event, recipients=[]))
    base = len(empty.encode())
    texts: list[str] = []
    chunk: list[str] = []
    size = base
    for agent_id in recipients:
        cost = len(agent_id.encode()) + 3  # the quotes and a comma
        if chunk and size + cost > MAX_MESSAGE_BYTES:
            texts.append(_broadcast(event, chunk))
            chunk, size = [], base
        chunk.append(agent_id)
        size += cost
    if chunk:
        texts.append(_broadcast(event, chunk))
    return texts


def _broadcast(event: Event, recipients: list[str]) -> str:
    return encode_message(QueueMessage(target="subscribers", event=event, recipients=recipients))
