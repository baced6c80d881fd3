# mypy: disable-error-code="untyped-decorator,no-untyped-call,misc"
"""The orchestration ``aos_turn`` and its two activities, ``aos_model_step`` and ``aos_tool``.

The turn's logic is ``aos.services.turns.run_turn``, a generator of commands; this module maps
each command to the Durable task of the same meaning (``drive_orchestration``), so the loop
replays from the orchestration's history as any orchestrator does: a model step's reply, a tool's
result, an approval and the clock are read back from history on replay, never produced again.

* ``CallEntity`` -> ``call_entity`` on the agent (applied in order, exactly once);
* ``CallModel`` -> ``call_activity_with_retry`` (``aos_model_step``): the ``openai`` client
  already retried throttling and 5xx honouring ``retry-after``; the activity retry covers a
  worker lost mid-step;
* ``CallTool`` -> ``call_activity`` (``aos_tool``), not retried: a kind's tool gets an idempotency
  key instead;
* ``WaitForEvent`` -> ``wait_for_external_event``, raced against a durable timer when it has a
  timeout (the Durable Functions human-interaction pattern);
* ``SetStatus`` -> ``set_custom_status`` (what ``GET …/turns/{turn_id}`` reads), ``Now`` ->
  ``current_utc_datetime``.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df
import azure.functions as func

from aos.agents.entity import ENTITY_NAME
from aos.domain.turns import MODEL_ACTIVITY, TOOL_ACTIVITY, TURN_ORCHESTRATOR, TurnStart
from aos.functions.container import AppRuntime

if TYPE_CHECKING:  # the turn loop loads with the first turn, not when the app is indexed
    from aos.services.turns import Command

__all__ = ["turn_blueprint"]

MODEL_STEP_ATTEMPTS = 3
MODEL_STEP_FIRST_RETRY_MS = 2_000


def turn_blueprint(runtime: AppRuntime) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name(TURN_ORCHESTRATOR)
    @bp.orchestration_trigger(context_name="context")
    def aos_turn(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        """One turn of one agent: model steps and tool calls until a reply (``run_turn``)."""
        from aos.services.turns import run_turn

        start = TurnStart.model_validate(context.get_input())
        turn = run_turn(start, runtime.settings.turn_budget)
        return (yield from drive_orchestration(context, start.agent_id, turn))

    @bp.function_name(MODEL_ACTIVITY)
    @bp.activity_trigger(input_name="step")
    async def aos_model_step(step: dict[str, Any]) -> dict[str, Any]:
        """Ask the agent's model for one step (``aos.services.turn_steps.model_step``)."""
        from aos.services.turn_steps import model_step

        return await model_step(step, runtime.chat_model)

    @bp.function_name(TOOL_ACTIVITY)
    @bp.activity_trigger(input_name="call")
    async def aos_tool(call: dict[str, Any]) -> dict[str, Any]:
        """Run one call of a kind's own tool (``aos.services.turn_steps.run_tool``)."""
        from aos.services.turn_steps import run_tool

        return await run_tool(call, runtime.kinds)

    return bp


def drive_orchestration(
    context: df.DurableOrchestrationContext,
    agent_id: str,
    turn: Generator[Command, Any, dict[str, Any]],
) -> Generator[Any, Any, dict[str, Any]]:
    """Run ``turn`` as an orchestrator: each command becomes its Durable task (see the module
    docstring); a failed task's exception is thrown into the turn, as the SDK throws it into an
    orchestrator."""
    from aos.services.turns import CallEntity, CallModel, CallTool, Now, SetStatus

    agent = df.EntityId(ENTITY_NAME, agent_id)
    retry = df.RetryOptions(MODEL_STEP_FIRST_RETRY_MS, MODEL_STEP_ATTEMPTS)
    value: Any = None
    error: Exception | None = None
    while True:
        try:
            command = turn.throw(error) if error is not None else turn.send(value)
        except StopIteration as stop:
            result: dict[str, Any] = stop.value
            return result
        value, error = None, None
        if isinstance(command, SetStatus):
            context.set_custom_status(command.status)
            continue
        if isinstance(command, Now):
            value = context.current_utc_datetime
            continue
        try:
            if isinstance(command, CallEntity):
                value = yield context.call_entity(agent, command.operation, command.input)
            elif isinstance(command, CallModel):
                value = yield context.call_activity_with_retry(MODEL_ACTIVITY, retry, command.input)
            elif isinstance(command, CallTool):
                value = yield context.call_activity(TOOL_ACTIVITY, command.input)
            elif command.timeout_seconds is None:
                value = yield context.wait_for_external_event(command.name)
            else:
                event = context.wait_for_external_event(command.name)
                deadline = context.current_utc_datetime + timedelta(seconds=command.timeout_seconds)
                timer = context.create_timer(deadline)
                winner = yield context.task_any([event, timer])
                if winner == event:
                    if not timer.is_completed:
                        timer.cancel()
                    value = event.result
                else:
                    value = None
        except Exception as exc:
            error = exc
