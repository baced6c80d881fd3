"""Talking to an agent: messages that become turns, a turn's status, and approvals of its tool
calls -- what ``POST …/messages``, ``GET …/turns/{turn_id}``, ``POST …/approval`` and the MCP tool
``ask_agent`` call.

A message travels like any event (``MESSAGE_EVENT_TYPE``, through the events queue: validated,
de-duplicated by its id, dead-lettered if it can never be delivered), so the same ``message_id``
twice is one turn, and the turn's id is known the moment the message is accepted
(``turn_id_for``). The turn's orchestration is started as the message is accepted, so the turn
is ``queued`` from that moment; it runs once the agent has the message and no other turn runs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aos.domain.conversation import MAX_QUEUED_TURNS, TurnState
from aos.domain.models import Event, new_id, utc_now
from aos.domain.turns import (
    MESSAGE_EVENT_TYPE,
    ApprovalRequest,
    MessageRequest,
    TurnStart,
    TurnStatus,
    turn_id_for,
    turn_status_of,
)
from aos.errors import AgentNotFoundError, BusyError, ConflictError, TurnNotFoundError
from aos.ports.index import IndexStatus
from aos.ports.turns import TurnScheduler
from aos.services.agents import AgentService

__all__ = ["MessageService", "TurnView"]

TurnView = dict[str, Any]
"""A turn as the API shows it (``aos.api.schemas.TurnResource``)."""

_DONE: frozenset[TurnStatus] = frozenset({"completed", "failed"})


class MessageService:
    def __init__(self, agents: AgentService, turns: TurnScheduler) -> None:
        self.agents = agents
        self.turns = turns

    async def send_message(
        self, agent_id: str, message: MessageRequest, *, correlation_id: str | None = None
    ) -> tuple[str, str]:
        """Queue a message for the agent; ``(message_id, turn_id)``. ``BusyError`` (a 429) when
        the agent has a full queue of waiting turns already."""
        entry = await self.agents.index.get(agent_id=agent_id)
        if entry is None or entry.status is IndexStatus.DEREGISTERING:
            raise AgentNotFoundError(agent_id)
        state = await self.agents.entities.read(agent_id=agent_id)
        if state is not None:
            turns = TurnState.model_validate(state.get("turns") or {})
            if turns.active is not None and len(turns.queued) >= MAX_QUEUED_TURNS:
                raise BusyError(
                    f"agent {agent_id!r} has {MAX_QUEUED_TURNS} turns waiting already; "
                    "send the message again when one has finished"
                )
        message_id = message.message_id or new_id()
        turn_id = turn_id_for(agent_id, message_id)
        # The turn's orchestration starts now, so the turn is visible (queued) at once; it waits
        # until the agent has the message and lets it run. Starting twice is harmless.
        await self.turns.start(
            instance_id=turn_id,
            start=TurnStart(
                agent_id=agent_id, turn_id=turn_id, prompt=message.content, source="message",
                cause_id=message_id, go=False, requested_at=utc_now(),
            ).model_dump(mode="json"),
        )  # fmt: skip
        event = Event.model_validate(
            {
                "event_id": message_id, "agent_id": agent_id, "type": MESSAGE_EVENT_TYPE,
                "data": {"content": message.content}, "source": "api",
                "correlation_id": correlation_id,
            }
        )  # fmt: skip
        await self.agents.send_event(event)
        return message_id, turn_id

    async def get_turn(self, agent_id: str, turn_id: str) -> TurnView:
        """The turn's status, reply, tool calls and usage. A turn asked for moments ago whose
        message the agent has not received yet is ``queued``: its message is found by its
        delivery state (the agent's turns), else the turn is unknown (404)."""
        status = await self.turns.status(instance_id=turn_id)
        started = status.get("input") if status else None
        if status is None or not isinstance(started, dict) or started.get("agent_id") != agent_id:
            state = await self.agents.entities.read(agent_id=agent_id)
            turns = TurnState.model_validate((state or {}).get("turns") or {})
            known = turns.status_of(turn_id)
            if known is None:
                raise TurnNotFoundError(agent_id, turn_id)
            return {"turn_id": turn_id, "agent_id": agent_id, "status": "queued"}
        return _view(agent_id, turn_id, status)

    async def approve(self, agent_id: str, turn_id: str, approval: ApprovalRequest) -> TurnView:
        """Answer the tool call the turn waits on. ``ConflictError`` if it waits on none."""
        view = await self.get_turn(agent_id, turn_id)
        if view["status"] != "waiting_approval":
            raise ConflictError(
                f"turn {turn_id!r} is {view['status']}, not waiting for an approval"
            )
        await self.turns.approve(instance_id=turn_id, answer=approval.model_dump())
        return view

    async def wait_for_turn(self, agent_id: str, turn_id: str, *, within: float) -> TurnView:
        """Poll until the turn has finished (or waits for an approval), at most ``within``
        seconds; the last view either way. The message that starts the turn may still be held
        for the invocation's output binding, written only when it returns: it is flushed first."""
        await self.agents.queue.flush()
        deadline = time.monotonic() + within
        delay = 0.05
        while True:
            try:
                view = await self.get_turn(agent_id, turn_id)
            except TurnNotFoundError:  # the message is still on its way to the agent
                view = {"turn_id": turn_id, "agent_id": agent_id, "status": "queued"}
            if view["status"] in _DONE or view["status"] == "waiting_approval":
                return view
            if time.monotonic() >= deadline:
                return view
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)


def _view(agent_id: str, turn_id: str, status: dict[str, Any]) -> TurnView:
    output: dict[str, Any] = status["output"] if isinstance(status.get("output"), dict) else {}
    custom: dict[str, Any] = (
        status["custom_status"] if isinstance(status.get("custom_status"), dict) else {}
    )
    started = status.get("input") or {}
    view: TurnView = {
        "turn_id": turn_id,
        "agent_id": agent_id,
        "status": turn_status_of(status) or "queued",
        "source": started.get("source"),
        "prompt": started.get("prompt"),
        "created_at": status.get("created_time"),
        "updated_at": status.get("last_updated_time"),
    }
    if output:
        for name in ("reply", "error", "steps", "usage", "model", "offline", "tool_calls"):
            view[name] = output.get(name)
    if custom.get("status") == "waiting_approval" and not output:
        view["waiting_for"] = custom.get("tool_call")
    if custom.get("step") is not None and not output:
        view["steps"] = custom.get("step")
    if status.get("runtime_status") in ("Failed", "Terminated") and not view.get("error"):
        view["error"] = f"the turn's orchestration {str(status['runtime_status']).lower()}"
    return view
