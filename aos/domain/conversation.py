"""What the entity remembers of its turns: which one runs, which wait, and the recent
conversation (``TurnState``), bounded in stored bytes like the rest of the state.

Kept apart from ``aos.domain.turns`` (requests, orchestration input, queue control) because the
agent's context (``aos.domain.models.AgentContext``) holds a ``TurnState``.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from aos.domain.escaping import truncate_escaped

__all__ = [
    "MAX_QUEUED_TURNS",
    "TURN_ID_PATTERN",
    "Conversation",
    "ConversationMessage",
    "TurnId",
    "TurnState",
    "TurnStatus",
]

TURN_ID_PATTERN = r"^turn-[0-9a-f]{32}$"
MAX_QUEUED_TURNS = 8
"""Turns waiting behind the running one; one more is refused (a 429 at the API)."""
_WINDOW_TEXT_BYTES = 1_000
"""A message is kept in the entity's window up to this many stored bytes (the transcript in
history keeps it whole)."""
_SUMMARY_BYTES = 600

TurnId = Annotated[str, StringConstraints(pattern=TURN_ID_PATTERN)]
TurnStatus = Literal["queued", "running", "waiting_approval", "completed", "failed"]


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConversationMessage(_State):
    role: Literal["user", "assistant"]
    content: str
    turn_id: TurnId


class Conversation(_State):
    """The recent conversation as the entity keeps it: bounded in stored bytes, the oldest
    messages folded into ``summary`` (a plain rolling extract: no model is asked to summarise,
    so the window is deterministic and costs nothing)."""

    summary: str = ""
    messages: tuple[ConversationMessage, ...] = ()

    def with_exchange(
        self, turn_id: str, prompt: str, reply: str | None, budget_bytes: int
    ) -> Conversation:
        added = [ConversationMessage(role="user", content=_window_text(prompt), turn_id=turn_id)]
        if reply:
            added.append(
                ConversationMessage(role="assistant", content=_window_text(reply), turn_id=turn_id)
            )
        messages = [*self.messages, *added]
        summary = self.summary
        while messages and _stored_bytes(summary, messages) > budget_bytes:
            oldest = messages.pop(0)
            summary = _fold(summary, oldest)
        if _stored_bytes(summary, messages) > budget_bytes:
            summary = truncate_escaped(summary, max(0, budget_bytes - 80))
        return Conversation(summary=summary, messages=tuple(messages))


class TurnState(_State):
    """The part of the agent's context that orders its turns and remembers its conversation."""

    active: TurnId | None = None
    active_since: str | None = None
    """When the running turn began (a formatted timestamp)."""
    active_deadline: str | None = None
    """Until when the running turn may hold the agent (its orchestration's budget, set when it
    starts): past it, a turn whose orchestration ended without saying so (terminated, crashed)
    is abandoned and the next one runs."""
    queued: tuple[TurnId, ...] = Field(default=(), max_length=MAX_QUEUED_TURNS)
    conversation: Conversation = Conversation()
    completed: int = 0
    failed: int = 0

    def knows(self, turn_id: str) -> bool:
        return turn_id == self.active or turn_id in self.queued

    def status_of(self, turn_id: str) -> TurnStatus | None:
        if turn_id == self.active:
            return "running"
        if turn_id in self.queued:
            return "queued"
        return None


def _window_text(text: str) -> str:
    kept = truncate_escaped(text, _WINDOW_TEXT_BYTES)
    return kept if len(kept) == len(text) else kept[: max(0, len(kept) - 1)] + "…"


def _stored_bytes(summary: str, messages: list[ConversationMessage]) -> int:
    dumped = {"summary": summary, "messages": [m.model_dump(mode="json") for m in messages]}
    return len(json.dumps(dumped))


def _fold(summary: str, message: ConversationMessage) -> str:
    """The summary with one more message folded in: the newest part is kept, the start cut."""
    line = f"{message.role}: {' '.join(message.content.split())[:160]}"
    merged = f"{summary} | {line}" if summary else line
    while len(json.dumps(merged)) - 2 > _SUMMARY_BYTES:
        cut = merged.find(" | ", 1)
        merged = merged[cut + 3 :] if cut > 0 else merged[-_SUMMARY_BYTES // 2 :]
    return merged
