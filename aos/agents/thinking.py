"""The entity's side of a turn: the operations the turn orchestration calls on its agent.

* ``begin_turn``: the turn's go -- if it is the agent's running turn, the context and tools the
  prompt is built from; if it still waits, ``wait``; if the agent no longer has it, ``gone``.
* ``apply_turn_step``: one model reply and its tool calls, in order: built-in calls are applied
  here (state, goals, decisions, sends, publishes, reminders: the exactly-once path a handler's
  effects take, with ids derived from the step), a kind's calls arrive with the results their
  activities returned; everything is journaled (``model_step`` and ``tool_call`` records). A step
  is remembered by its key, so a repeated call applies nothing twice.
* ``end_turn``: the turn's end: its exchange joins the conversation window, a ``turn`` record
  joins the history, and the next waiting turn gets its go (a ``wake`` on the events queue).

They are functions of the agent, kept apart so that the handler API stays in
``aos.agents.base`` and this module holds a turn's bookkeeping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from aos.agents.tools import (
    BUILTIN_TOOLS,
    GOAL_TOOLS,
    CancelReminderArgs,
    DecideArgs,
    PublishArgs,
    RemindArgs,
    SendArgs,
    Tool,
    builtin_tool_specs,
    parse_arguments,
)
from aos.domain.document import id_digest
from aos.domain.effects import Effect
from aos.domain.history import HistoryKind
from aos.domain.models import Decision, Event, Goal, StateWrite, format_timestamp
from aos.domain.turns import TurnControl, TurnEnd, TurnStep, step_key
from aos.domain.validation import parse
from aos.errors import AOSError, InvalidInputError, UnknownOperationError

if TYPE_CHECKING:
    from aos.agents.base import PerpetualAgent

__all__ = [
    "MAX_TOOL_CALLS_PER_STEP",
    "apply_turn_step",
    "begin_turn",
    "describe_error",
    "end_turn",
    "kind_tools",
    "release_abandoned_turn",
    "tool_catalog",
    "wake_waiting_turns",
]

MAX_TOOL_CALLS_PER_STEP = 16
_RECENT_EVENTS_IN_PROMPT = 3


def kind_tools(cls: type[PerpetualAgent]) -> dict[str, Tool]:
    """The kind's own tools (``@tool`` functions in its class body or its bases')."""
    found: dict[str, Tool] = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if isinstance(value, Tool):
                found[value.name] = value
    return found


def tool_catalog(agent: PerpetualAgent) -> list[dict[str, Any]]:
    """Every tool this agent's model may call, as the turn orchestration needs them."""
    gated = set(agent.document.raw["spec"].get("requires_approval") or ())
    catalog = [
        {**_spec_json(spec), "needs_approval": spec.name in gated, "builtin": True}
        for spec in builtin_tool_specs(purpose_driven=_keeps_goals(agent))
    ]
    for tool in kind_tools(type(agent)).values():
        needs = tool.needs_approval or tool.name in gated
        catalog.append({**_spec_json(tool.spec), "needs_approval": needs, "builtin": False})
    return catalog


def begin_turn(
    agent: PerpetualAgent, turn_id: str, deadline: datetime | None = None
) -> dict[str, Any]:
    """The turn's go (see the module docstring); ``deadline`` is recorded as the time after
    which the turn is taken for abandoned (``release_abandoned_turn``)."""
    turns = agent.context.turns
    if turns.active != turn_id:
        return {"status": "wait" if turn_id in turns.queued else "gone"}
    if deadline is not None and turns.active_deadline != format_timestamp(deadline):
        changed = turns.model_copy(update={"active_deadline": format_timestamp(deadline)})
        agent.document = agent.document.replace(agent.limits, turns=changed)
    raw = agent.document.raw
    spec = raw["spec"]
    return {
        "status": "go",
        "context": {
            "agent_id": spec["agent_id"],
            "kind": spec["kind"],
            "adapter_name": spec["adapter_name"],
            "purpose": spec["purpose"],
            "purpose_scope": spec["purpose_scope"],
            "success_criteria": spec["success_criteria"],
            "goals": raw["goals"],
            "state": raw["state"],
            "recent_events": raw["recent_events"][-_RECENT_EVENTS_IN_PROMPT:],
            "reminders": raw.get("reminders", []),
            "conversation": turns.conversation.model_dump(mode="json"),
        },
        "tools": tool_catalog(agent),
    }


def apply_turn_step(agent: PerpetualAgent, step: TurnStep) -> dict[str, Any]:
    key = step_key(step.turn_id, step.step)
    digest = id_digest(key, "turn")
    if agent.context.turns.active != step.turn_id:  # abandoned, or the agent was replaced
        return {"applied": False, "gone": True, "results": []}
    if agent.document.has_processed(digest):
        return {"applied": False, "results": [_already(call.id) for call in step.calls]}
    recorded_at = format_timestamp(step.at)
    base = _record_number(step.turn_id, step.step)
    agent._journal(
        "model_step", key, "aos.turn", recorded_at,
        {"turn_id": step.turn_id, "step": step.step, **step.reply}, effect=base,
    )  # fmt: skip
    cause = Event.model_validate(
        {
            "event_id": key, "agent_id": agent.agent_id, "type": "aos.turn",
            "source": agent.agent_id, "correlation_id": step.turn_id[:64],
            "created_at": step.at, "hops": step.hops,
        }
    )  # fmt: skip
    results = []
    for position, call in enumerate(step.calls):
        call_key = step_key(step.turn_id, step.step, position)
        if position >= MAX_TOOL_CALLS_PER_STEP:
            outcome: dict[str, Any] = {
                "error": f"at most {MAX_TOOL_CALLS_PER_STEP} tool calls per step"
            }
        elif call.approved is False:
            outcome = {"error": call.error or "not approved"}
        elif call.builtin:
            outcome = _run_builtin(agent, call.name, call.arguments, call_key, cause)
        elif call.error is not None:
            outcome = {"error": call.error}
        else:
            outcome = {"result": call.result}
        results.append({"id": call.id, **outcome})
        record = {
            "turn_id": step.turn_id, "step": step.step, "call_id": call.id,
            "name": call.name, "arguments": call.arguments, "builtin": call.builtin,
            "approved": call.approved, **outcome,
        }  # fmt: skip
        agent._journal(
            "tool_call", call_key, call.name, recorded_at, record,
            effect=base + 1 + min(position, MAX_TOOL_CALLS_PER_STEP),
        )  # fmt: skip
    agent.document = agent.document.remember(digest, agent.limits)
    return {"applied": True, "results": results}


def _run_builtin(
    agent: PerpetualAgent, name: str, arguments: str, key: str, cause: Event
) -> dict[str, Any]:
    """Apply one built-in call atomically: on any error nothing of it stays, and the error
    is the model's to read."""
    before = agent.document
    journaled = len(agent.journal) if agent.journal is not None else 0
    emitted = len(agent.effects)
    agent._cause = cause
    try:
        result = _builtin(agent, name, parse_arguments(arguments), key)
        for number, effect in enumerate(agent.effects[emitted:], start=1):
            agent._journal(
                effect.kind, key, effect.type, format_timestamp(cause.created_at),
                effect.payload, effect=_record_number(key, 0) + number,
            )  # fmt: skip
    except AOSError as exc:
        agent._undo(before, journaled, emitted)
        return {"error": describe_error(exc)}
    except Exception as exc:  # a bug in a kind's handler reached through a tool
        agent._undo(before, journaled, emitted)
        return {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    finally:
        agent._cause = None
    return {"result": result}


def release_abandoned_turn(agent: PerpetualAgent, now: datetime) -> str | None:
    """If the running turn is past its deadline -- its orchestration was terminated or failed
    without ending it -- end it as failed (recorded) and let the next one run; the abandoned
    turn's id, or ``None``. A late step or end from that orchestration is then ignored."""
    turns = agent.context.turns
    if turns.active is None or turns.active_deadline is None:
        return None
    deadline = datetime.fromisoformat(turns.active_deadline.replace("Z", "+00:00"))
    if now <= deadline:
        return None
    abandoned = turns.active
    end_turn(
        agent,
        TurnEnd(
            turn_id=abandoned, status="failed", prompt="",
            error="abandoned: its orchestration did not end it by its deadline", at=now,
        ),
    )  # fmt: skip
    return abandoned


def wake_waiting_turns(agent: PerpetualAgent) -> list[str]:
    """The agent is going away: wake every turn still waiting for it, so that each asks, hears
    it is gone, and ends (instead of waiting for a wake that would never come)."""
    turns = agent.context.turns
    for turn_id in turns.queued:
        _wake(agent, turn_id)
    return list(turns.queued)


def end_turn(agent: PerpetualAgent, end: TurnEnd) -> dict[str, Any]:
    turns = agent.context.turns
    if turns.active != end.turn_id:
        return {"ended": False, "next": None}
    conversation = turns.conversation.with_exchange(
        end.turn_id, end.prompt, end.reply, agent.limits.conversation_bytes
    )
    following = turns.queued[0] if turns.queued else None
    changed = turns.model_copy(
        update={
            "active": following,
            "active_since": format_timestamp(end.at) if following else None,
            "active_deadline": None,
            "queued": turns.queued[1:],
            "conversation": conversation,
            "completed": turns.completed + (end.status == "completed"),
            "failed": turns.failed + (end.status == "failed"),
        }
    )
    agent.document = agent.document.replace(agent.limits, turns=changed)
    kind: HistoryKind = "turn"
    agent._journal(
        kind, step_key(end.turn_id, 0), "aos.turn", format_timestamp(end.at),
        end.model_dump(mode="json"), effect=_record_number(end.turn_id, 0) + 1999,
    )  # fmt: skip
    if following is not None:
        _wake(agent, following)
    return {"ended": True, "next": following}


def _wake(agent: PerpetualAgent, turn_id: str) -> None:
    """Tell a waiting turn's orchestration (through the events queue) that it may ask again."""
    control = TurnControl(agent_id=agent.agent_id, turn_id=turn_id, wake=True)
    payload = {"turn_id": turn_id, "wake": True}
    agent.effects.append(Effect.of_turn("turn_requested", control, payload, None))


class _GoalKeeper(Protocol):
    """What the goal tools need of a purpose-driven agent (``aos.agents.purpose``, which
    imports this module's importer: matched by shape, not imported)."""

    def create_goal(self, goal: Mapping[str, Any]) -> Goal: ...
    def change_goal(self, update: Mapping[str, Any]) -> Goal: ...
    def decide(self, request: Mapping[str, Any]) -> Decision: ...


def _keeps_goals(agent: PerpetualAgent) -> bool:
    return all(
        callable(getattr(agent, name, None)) for name in ("create_goal", "change_goal", "decide")
    )


def _builtin(agent: PerpetualAgent, name: str, args: dict[str, Any], key: str) -> Any:
    if name not in BUILTIN_TOOLS:
        raise UnknownOperationError(f"no built-in tool {name!r}")
    if name in GOAL_TOOLS:
        if not _keeps_goals(agent):
            raise UnknownOperationError(f"agents of kind {agent.kind!r} have no tool {name!r}")
        keeper = cast(_GoalKeeper, agent)
        if name == "add_goal":
            goal = keeper.create_goal({"id": f"g-{id_digest(key, 'goal')}", **args})
            return goal.model_dump(mode="json")
        if name == "update_goal":
            return keeper.change_goal(args).model_dump(mode="json")
        decide = parse(DecideArgs, args, what="decide arguments")
        decision = keeper.decide(
            {"decision_id": key, "options": decide.options, "context": decide.context}
        )
        return {
            "decision_id": decision.decision_id,
            "chosen": decision.chosen,
            "rationale": decision.rationale,
            "scores": list(decision.scores),
        }
    if name == "update_state":
        write = parse(StateWrite, args, what="update_state arguments")
        agent.set_state_value(write.key, write.value)
        return {"key": write.key, "updated": True}
    if name == "send":
        send = parse(SendArgs, args, what="send arguments")
        return {"event_id": agent.send(send.agent_id, send.type, send.data).event_id}
    if name == "publish":
        publish = parse(PublishArgs, args, what="publish arguments")
        return {"event_id": agent.publish(publish.type, publish.data).event_id}
    if name == "remind":
        remind = parse(RemindArgs, args, what="remind arguments")
        reminder = agent.remind(
            remind.reminder_id, type=remind.type, data=remind.data, at=remind.at,
            after=remind.after_seconds, every=remind.every_seconds,
        )  # fmt: skip
        return reminder.model_dump(mode="json")
    cancel = parse(CancelReminderArgs, args, what="cancel_reminder arguments")
    return {
        "reminder_id": cancel.reminder_id,
        "cancelled": agent.cancel_reminder(cancel.reminder_id),
    }


def _record_number(turn_id: str, step: int) -> int:
    """Where a turn's records sit among the records of the same sequence: a number derived from
    the turn (below 2**31, past the small numbers of an event's effects), then the step."""
    digest = int.from_bytes(hashlib.blake2b(turn_id.encode(), digest_size=4).digest())
    return 100 + (digest % 1_000_000) * 2000 + max(0, step - 1) * 20


def _already(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "error": "this step was applied already"}


def describe_error(exc: AOSError) -> str:
    """A refused tool call as the model reads it: the message, and each failing field."""
    if isinstance(exc, InvalidInputError) and exc.errors:
        fields = "; ".join(f"{e.pointer or '/'}: {e.message}" for e in exc.errors)
        return f"{exc} ({fields})"
    return str(exc)


def _spec_json(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "parameters": spec.parameters}
