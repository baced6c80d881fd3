"""Turns: an agent thinking -- a model answering, calling tools, until it has a reply.

A turn starts from a message (``POST /api/agents/{id}/messages``, an event of type
``MESSAGE_EVENT_TYPE`` on the events queue), from an event of a type the agent's kind thinks about
(``PerpetualAgent.thinks_about``), or from a handler (``self.think(prompt)``). All three arrive in
the agent's entity, which owns the order: one turn runs at a time (``TurnState.active``), the
others wait in a bounded queue of ids (``TurnState.queued``). The turn itself is a Durable
orchestration (``TURN_ORCHESTRATOR``, instance id = the turn id), started from the events queue as
soon as the turn is requested (it carries the prompt, so the entity never stores one) and waiting
for its go (a ``wake`` event) while queued. Every model step is an activity, so a reply is paid for
once and replayed from the orchestration's history afterwards.

Ids are derived, never drawn: a turn's id comes from the event that asked for it
(``turn_id_for``), so a batch the host runs again requests the same turn, whose orchestration
already exists; a tool call's idempotency key is the turn id and its step and position.

The entity keeps a bounded conversation window (``Conversation``: a rolling summary and the most
recent messages, within ``Limits.conversation_bytes``); the whole transcript of every turn is in
the history archive.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from aos.domain.conversation import (
    MAX_QUEUED_TURNS,
    TURN_ID_PATTERN,
    Conversation,
    ConversationMessage,
    TurnId,
    TurnState,
    TurnStatus,
)
from aos.domain.models import AgentId, Event, EventId, Timestamp
from aos.errors import FieldError, InvalidInputError

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_QUEUED_TURNS",
    "MESSAGE_EVENT_TYPE",
    "MODEL_ACTIVITY",
    "TOOL_ACTIVITY",
    "TURN_ID_PATTERN",
    "TURN_ORCHESTRATOR",
    "ApprovalRequest",
    "Conversation",
    "ConversationMessage",
    "MessageRequest",
    "StepCall",
    "TurnBudget",
    "TurnControl",
    "TurnEnd",
    "TurnMessage",
    "TurnRef",
    "TurnStart",
    "TurnState",
    "TurnStatus",
    "TurnStep",
    "event_prompt",
    "message_content",
    "step_key",
    "turn_id_for",
    "turn_status_of",
]

MESSAGE_EVENT_TYPE = "aos.message"
"""The event type a message travels as: the entity turns it into a turn, not an ``on_event``."""
TURN_ORCHESTRATOR = "aos_turn"
MODEL_ACTIVITY = "aos_model_step"
TOOL_ACTIVITY = "aos_tool"
MAX_MESSAGE_CHARS = 16_000
"""A message's content: long enough for a document excerpt, short enough to travel as one queue
message (64 KB) in any script."""
TurnSource = Literal["message", "event", "handler"]
"""What asked for a turn: a message, an event of a type the kind thinks about, a handler."""


def turn_id_for(agent_id: str, cause_id: str, index: int = 0) -> str:
    """The turn asked for by the event ``cause_id`` (the ``index``-th, if one event asks for
    several): the same inputs, the same id, in any process."""
    digest = hashlib.blake2b(
        f"{agent_id}\x00{cause_id}\x00{index}".encode(), digest_size=16, person=b"aos-turn"
    ).hexdigest()
    return f"turn-{digest}"


def step_key(turn_id: str, step: int, call: int | None = None) -> str:
    """The idempotency key of a turn's step (and of one tool call in it): what a kind's own tools
    receive to make their side effects happen once, however often an activity runs."""
    return f"{turn_id}:{step}" if call is None else f"{turn_id}:{step}:{call}"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MessageRequest(_Input):
    """``POST /api/agents/{id}/messages``: what to say to the agent. The same ``message_id``
    twice is one turn."""

    content: Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_CHARS)]
    message_id: EventId | None = None


class ApprovalRequest(_Input):
    """``POST /api/agents/{id}/turns/{turn_id}/approval``: whether the waiting tool call runs."""

    approve: bool
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


class TurnBudget(_State):
    """What one turn may spend before it fails (visibly, as ``failed`` with the reason)."""

    max_steps: int = Field(default=8, ge=1, le=64)
    max_tokens: int = Field(default=64_000, ge=100, le=10_000_000)
    max_seconds: int = Field(default=600, ge=1, le=86_400)
    approval_timeout_seconds: int = Field(default=3_600, ge=1, le=7 * 86_400)


class TurnStart(_State):
    """The turn orchestration's input: which agent, what it was asked, and whether it may run
    at once (``go``) or waits for the ``wake`` event because another turn is running."""

    agent_id: AgentId
    turn_id: TurnId
    prompt: str
    source: TurnSource
    cause_id: str
    hops: int = 0
    go: bool = True
    requested_at: Timestamp


class TurnControl(_State):
    """On the events queue: start a turn's orchestration (``start``), or tell a queued one that
    it may run now (``wake``)."""

    agent_id: AgentId
    turn_id: TurnId
    start: TurnStart | None = None
    wake: bool = False


class TurnMessage(_State):
    """The envelope of a ``TurnControl`` on the events queue (beside ``QueueMessage``)."""

    version: Literal[1] = 1
    target: Literal["turn"] = "turn"
    turn: TurnControl


def message_content(event: Event) -> str:
    """The content of a message event (``MESSAGE_EVENT_TYPE``), or ``InvalidInputError`` naming
    ``data/content``."""
    data = event.data
    content = data.get("content") if isinstance(data, dict) else None
    if not isinstance(content, str) or not 1 <= len(content.strip()) <= MAX_MESSAGE_CHARS:
        raise InvalidInputError(
            "Invalid message",
            [FieldError(("data", "content"), f"a string of 1 to {MAX_MESSAGE_CHARS} characters")],
        )
    return content.strip()


def event_prompt(event: Event) -> str:
    """The prompt of a turn started by an event its kind thinks about: the event, as JSON the
    model can read (its data cut to fit a message)."""
    data = json.dumps(event.data, ensure_ascii=False)
    if len(data) > MAX_MESSAGE_CHARS - 400:
        data = data[: MAX_MESSAGE_CHARS - 400] + "…"
    source = f" from {event.source}" if event.source else ""
    return f"Event {event.type}{source} (id {event.event_id}):\n{data}"


def turn_status_of(orchestration: dict[str, Any] | None) -> TurnStatus | None:
    """A turn's status from its orchestration's status (``None``: no such orchestration)."""
    if orchestration is None:
        return None
    runtime = str(orchestration.get("runtime_status") or "")
    custom = orchestration.get("custom_status")
    phase = custom.get("status") if isinstance(custom, dict) else None
    if runtime in ("Completed",):
        output = orchestration.get("output")
        failed = isinstance(output, dict) and output.get("status") == "failed"
        return "failed" if failed else "completed"
    if runtime in ("Failed", "Terminated", "Canceled"):
        return "failed"
    if phase in ("queued", "running", "waiting_approval"):
        return phase  # type: ignore[no-any-return]
    return "queued" if runtime == "Pending" else "running"


class TurnRef(_State):
    """Input of the entity's ``begin_turn``: the turn, and until when it may run."""

    turn_id: TurnId
    deadline: Timestamp | None = None


class StepCall(_State):
    """One tool call of a step, as the orchestration hands it to the entity: a built-in call to
    apply (``builtin``), or a kind's tool call already run as an activity (its ``result`` or
    ``error``). ``approved`` is the approval's answer for a tool that needs one."""

    id: str
    name: str
    arguments: str
    builtin: bool
    result: Any = None
    error: str | None = None
    approved: bool | None = None


class TurnStep(_State):
    """Input of the entity's ``apply_turn_step``: one model reply and its tool calls, in order."""

    turn_id: TurnId
    step: int = Field(ge=1)
    hops: int = 0
    at: Timestamp
    reply: dict[str, Any]
    calls: tuple[StepCall, ...] = ()


class TurnEnd(_State):
    """Input of the entity's ``end_turn``: how the turn ended, for the window and the history."""

    turn_id: TurnId
    status: Literal["completed", "failed"]
    prompt: str
    reply: str | None = None
    error: str | None = None
    steps: int = 0
    usage: dict[str, int] = Field(default_factory=dict)
    model: str = ""
    offline: bool = False
    at: Timestamp
