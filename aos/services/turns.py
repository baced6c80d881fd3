"""One turn, from its go to its reply: the loop of model steps and tool calls, written once.

``run_turn`` is a generator of *commands* (call the entity, call the model, run a kind's tool, wait
for an event, say the status, read the clock); whoever drives it executes each command and sends
the answer back. The Durable orchestration ``aos_turn`` (``aos.functions.turn_functions``) maps
every command to the task of the same meaning -- ``call_entity``, ``call_activity``,
``wait_for_external_event`` with a durable timer, ``set_custom_status``,
``current_utc_datetime`` -- so the loop replays deterministically from the orchestration's
history; ``drive_in_process`` runs the same loop against in-memory parts for tests and the
in-process ``AgentManager``.

A turn fails visibly, never silently: a model that cannot answer, a budget spent (steps, tokens,
time) or an agent that went away ends it as ``failed`` with the reason, in the turn's status, its
``turn`` history record and the agent's counters.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aos.domain.models import format_timestamp
from aos.domain.turns import StepCall, TurnBudget, TurnEnd, TurnStart, TurnStep, step_key
from aos.ports.models import ModelReply, ToolCall, ToolSpec, Usage

__all__ = [
    "CallEntity",
    "CallModel",
    "CallTool",
    "Command",
    "Now",
    "SetStatus",
    "WaitForEvent",
    "build_messages",
    "drive_in_process",
    "run_turn",
]

_DEADLINE_MARGIN_SECONDS = 300
"""Past its budget (time and one approval wait) plus this, a running turn is taken for
abandoned: the next turn the agent is asked for releases it."""
_TOOL_RESULT_CHARS = 16_000
"""A tool result is shown to the model up to this many characters of JSON."""


@dataclass(frozen=True, slots=True)
class CallEntity:
    operation: str
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallModel:
    """One model step (the ``aos_model_step`` activity); answers ``ModelReply.to_json()`` or
    ``{"error": ...}`` when the model refused for good (a retryable failure raises)."""

    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallTool:
    """One call of a kind's tool (the ``aos_tool`` activity): ``{"result": ...}`` or
    ``{"error": ...}``."""

    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WaitForEvent:
    """Wait for the external event ``name``; answers its value, or ``None`` after ``timeout``
    seconds (``None``: wait as long as it takes)."""

    name: str
    timeout_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class SetStatus:
    status: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Now:
    """The driver's clock (the orchestration's replay-safe ``current_utc_datetime``)."""


Command = CallEntity | CallModel | CallTool | WaitForEvent | SetStatus | Now


class TurnFailedError(Exception):
    """The turn ends as ``failed`` with this reason."""


def run_turn(start: TurnStart, budget: TurnBudget) -> Generator[Command, Any, dict[str, Any]]:
    """The turn ``start`` describes, as commands; returns the turn's outcome (its status,
    reply, tool calls, usage and model), which the orchestration returns as its output."""
    if not start.go:
        # Queued, or started by the API as it took the message (which may not have reached the
        # agent yet): the agent wakes the turn when it may run. A message that never arrives
        # (its agent went away) ends the wait after the turn's time budget.
        yield SetStatus({"status": "queued"})
        timeout = budget.max_seconds if start.source == "message" else None
        yield WaitForEvent("wake", timeout)
    first: datetime = yield Now()
    limit = budget.max_seconds + budget.approval_timeout_seconds + _DEADLINE_MARGIN_SECONDS
    deadline = format_timestamp(first + timedelta(seconds=limit))
    while True:
        answer = yield CallEntity("begin_turn", {"turn_id": start.turn_id, "deadline": deadline})
        status = answer.get("status") if isinstance(answer, dict) else None
        if status == "go":
            break
        if status != "wait":  # deregistered, or the message never arrived: nothing to end
            return _outcome(start, "failed", error="the agent does not have this turn")
        yield SetStatus({"status": "queued"})
        yield WaitForEvent("wake")
    began: datetime = yield Now()
    yield SetStatus({"status": "running", "step": 0})
    context, catalog = answer["context"], answer["tools"]
    tools = {t["name"]: t for t in catalog}
    specs = [ToolSpec(t["name"], t["description"], t["parameters"]) for t in catalog]
    messages = build_messages(context, start.prompt)
    usage, steps, calls_made = Usage(), 0, []
    model, offline, reply_text, error = "", False, None, None
    try:
        for step in range(1, budget.max_steps + 1):
            steps = step
            now: datetime = yield Now()
            if (now - began).total_seconds() > budget.max_seconds:
                raise TurnFailedError(f"the turn ran out of time ({budget.max_seconds} s)")
            answered = yield CallModel(
                {
                    "agent_id": start.agent_id,
                    "turn_id": start.turn_id,
                    "step": step,
                    "adapter_name": context["adapter_name"],
                    "messages": messages,
                    "tools": [spec.to_openai() for spec in specs],
                }
            )
            if "error" in answered:
                raise TurnFailedError(f"the model could not answer: {answered['error']}")
            reply = ModelReply.from_json(answered)
            usage, model, offline = usage + reply.usage, reply.model, reply.offline
            calls = []
            for position, call in enumerate(reply.tool_calls):
                tool = tools.get(call.name)
                prepared = yield from _prepare_call(
                    start, context["kind"], step, position, call, tool, budget
                )
                calls.append(prepared)
            now = yield Now()
            applied = yield CallEntity(
                "apply_turn_step",
                TurnStep(
                    turn_id=start.turn_id, step=step, hops=start.hops, at=now,
                    reply=reply.to_json(), calls=tuple(calls),
                ).model_dump(mode="json"),
            )  # fmt: skip
            if isinstance(applied, dict) and applied.get("gone"):
                raise TurnFailedError("the agent no longer has this turn (deregistered?)")
            results = applied.get("results", []) if isinstance(applied, dict) else []
            messages.append(reply.assistant_message())
            for call, result in zip(reply.tool_calls, results, strict=False):
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": _tool_text(result)}
                )
                calls_made.append({"step": step, "name": call.name, **result})
            if usage.total_tokens > budget.max_tokens:
                raise TurnFailedError(
                    f"the turn used {usage.total_tokens} tokens; the budget is {budget.max_tokens}"
                )
            if not reply.tool_calls:
                reply_text = reply.content or ""
                break
            yield SetStatus({"status": "running", "step": step})
        else:
            raise TurnFailedError(f"no final answer within {budget.max_steps} steps")
    except TurnFailedError as exc:
        error = str(exc)
    except Exception as exc:  # an activity failed for good (its retries spent)
        error = f"a model step failed: {_activity_error(exc)}"
    status = "failed" if error else "completed"
    now = yield Now()
    yield CallEntity(
        "end_turn",
        TurnEnd(
            turn_id=start.turn_id, status=status, prompt=start.prompt, reply=reply_text,
            error=error, steps=steps, usage=usage.to_json(), model=model, offline=offline,
            at=now,
        ).model_dump(mode="json"),
    )  # fmt: skip
    return _outcome(
        start, status, reply=reply_text, error=error, steps=steps, usage=usage,
        model=model, offline=offline, tool_calls=calls_made,
    )  # fmt: skip


def _prepare_call(
    start: TurnStart,
    kind: str,
    step: int,
    position: int,
    call: ToolCall,
    tool: dict[str, Any] | None,
    budget: TurnBudget,
) -> Generator[Command, Any, StepCall]:
    """A tool call made ready for the entity: approved (or not), a kind's tool run."""
    if tool is None:
        return StepCall(
            id=call.id, name=call.name, arguments=call.arguments, builtin=False,
            error=f"there is no tool named {call.name!r}",
        )  # fmt: skip
    approved: bool | None = None
    refusal: str | None = None
    if tool.get("needs_approval"):
        yield SetStatus(
            {
                "status": "waiting_approval",
                "step": step,
                "tool_call": {"id": call.id, "name": call.name, "arguments": call.arguments},
            }
        )
        answer = yield WaitForEvent("approval", budget.approval_timeout_seconds)
        if answer is None:
            approved = False
            refusal = f"not approved within {budget.approval_timeout_seconds} s"
        else:
            approved = bool(answer.get("approve")) if isinstance(answer, dict) else False
            reason = answer.get("reason") if isinstance(answer, dict) else None
            refusal = None if approved else f"refused{': ' + reason if reason else ''}"
        yield SetStatus({"status": "running", "step": step})
    if tool["builtin"] or approved is False:
        return StepCall(
            id=call.id, name=call.name, arguments=call.arguments, builtin=tool["builtin"],
            approved=approved, error=refusal,
        )  # fmt: skip
    ran = yield CallTool(
        {
            "agent_id": start.agent_id,
            "kind": kind,
            "turn_id": start.turn_id,
            "tool": call.name,
            "arguments": call.arguments,
            "idempotency_key": step_key(start.turn_id, step, position),
        }
    )
    return StepCall(
        id=call.id, name=call.name, arguments=call.arguments, builtin=False, approved=approved,
        result=ran.get("result"), error=ran.get("error"),
    )  # fmt: skip


def build_messages(context: dict[str, Any], prompt: str) -> list[dict[str, Any]]:
    """The conversation a turn starts from: who the agent is (purpose, scope, criteria, goals,
    state, reminders, recent events), the conversation window, then the prompt."""
    lines = [
        f"You are agent {context['agent_id']}, a perpetual agent of kind {context['kind']}.",
        f"Purpose: {context['purpose']}",
    ]
    if context.get("purpose_scope"):
        lines.append(f"Scope: {context['purpose_scope']}")
    if context.get("success_criteria"):
        lines.append("Success criteria: " + "; ".join(context["success_criteria"]))
    goals = context.get("goals") or []
    if goals:
        lines.append("Goals:")
        lines.extend(
            f"- [{g['id']}] {g['description']} ({g['status']}, {g['progress']:.0%})" for g in goals
        )
    if context.get("state"):
        lines.append("State: " + json.dumps(context["state"], ensure_ascii=False)[:4000])
    if context.get("reminders"):
        lines.append(
            "Reminders: "
            + ", ".join(
                f"{r['reminder_id']} ({r['type']} at {r['due']})" for r in context["reminders"]
            )
        )
    recent = context.get("recent_events") or []
    if recent:
        lines.append(
            "Recent events: " + ", ".join(f"{e['type']} ({e['event_id']})" for e in recent)
        )
    conversation = context.get("conversation") or {}
    if conversation.get("summary"):
        lines.append(f"Earlier conversation (summary): {conversation['summary']}")
    lines.append(
        "Act through your tools when the request needs it; then answer briefly. "
        "Refuse what is outside your purpose."
    )
    messages: list[dict[str, Any]] = [{"role": "system", "content": "\n".join(lines)}]
    for message in conversation.get("messages") or []:
        messages.append({"role": message["role"], "content": message["content"]})
    messages.append({"role": "user", "content": prompt})
    return messages


def _outcome(start: TurnStart, status: str, **fields: Any) -> dict[str, Any]:
    usage = fields.pop("usage", None) or Usage()
    return {
        "turn_id": start.turn_id,
        "agent_id": start.agent_id,
        "status": status,
        "source": start.source,
        "cause_id": start.cause_id,
        "prompt": start.prompt,
        "reply": fields.get("reply"),
        "error": fields.get("error"),
        "steps": fields.get("steps", 0),
        "usage": usage.to_json(),
        "model": fields.get("model", ""),
        "offline": fields.get("offline", False),
        "tool_calls": fields.get("tool_calls", []),
    }


def _tool_text(result: dict[str, Any]) -> str:
    body = {k: v for k, v in result.items() if k != "id"}
    text = json.dumps(body, ensure_ascii=False, default=str)
    return text if len(text) <= _TOOL_RESULT_CHARS else text[:_TOOL_RESULT_CHARS] + "…"


def _activity_error(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:500]


async def drive_in_process(
    turn: Generator[Command, Any, dict[str, Any]],
    *,
    call_entity: Callable[[str, dict[str, Any]], Awaitable[Any]],
    call_model: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    call_tool: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    wait_for_event: Callable[[str, float | None], Awaitable[Any]],
    now: Callable[[], datetime],
    on_status: Callable[[dict[str, Any]], None] = lambda status: None,
) -> dict[str, Any]:
    """Run ``turn`` with plain async callables (tests and the in-process manager). An exception
    from a callable is thrown into the turn, as a failed task is in an orchestration."""
    value: Any = None
    error: Exception | None = None
    while True:
        try:
            command = turn.throw(error) if error is not None else turn.send(value)
        except StopIteration as stop:
            result: dict[str, Any] = stop.value
            return result
        value, error = None, None
        try:
            match command:
                case CallEntity(operation, payload):
                    value = await call_entity(operation, payload)
                case CallModel(payload):
                    value = await call_model(payload)
                case CallTool(payload):
                    value = await call_tool(payload)
                case WaitForEvent(name, timeout):
                    value = await wait_for_event(name, timeout)
                case SetStatus(status):
                    on_status(status)
                case Now():
                    value = now()
        except Exception as exc:
            error = exc
