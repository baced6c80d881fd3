"""The dead-letter routes' answers, as this client reads them.

The routes (``/api/deadletters`` and ``/api/poison``) are served by a module of their own; until
their models are shared like ``aos.api_schemas``, these follow the documented contract and ignore
fields they do not know, so that a newer service does not break an older client.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = ["DeadLetterItem", "DeadLetterList", "DeadLetterReplayed"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DeadLetterItem(_Answer):
    """A message the queue path could not deliver: ``queue`` ``deadletter`` (it can never be
    valid) or ``poison`` (it failed ``maxDequeueCount`` times), with why and the original."""

    id: str
    queue: Literal["deadletter", "poison"]
    reason: str | None = None
    errors: list[JsonValue] = Field(default_factory=list)
    original: JsonValue = None
    message_id: str | None = None
    dequeue_count: int | None = None
    dead_lettered_at: str | None = None
    event_id: str | None = None
    agent_id: str | None = None
    type: str | None = None


class DeadLetterList(_Answer):
    value: list[DeadLetterItem]
    nextLink: str | None = None  # noqa: N815


class DeadLetterReplayed(_Answer):
    """``POST …/replay``: the message went back to the events queue."""

    id: str
    status: Literal["replayed"] = "replayed"
    event_id: str | None = None
