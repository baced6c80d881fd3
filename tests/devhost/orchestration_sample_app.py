# mypy: disable-error-code="untyped-decorator,misc,no-untyped-call"
"""A function app of Durable orchestrations, used only by the devhost tests.

The patterns are the ones the Durable Functions docs describe (function chaining, fan-out/fan-in,
human interaction with a timeout, an eternal orchestration with continue_as_new) plus the rest of
the orchestration API: retries, sub-orchestrations, entities (call and signal), custom status,
failures. `marked_step` records every execution in a table (`%DEVHOST_MARKER_TABLE%`) so the
crash test can count how often each activity ran.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
bp = df.Blueprint()  # everything but `ready`, so another app can register it too


@app.route(route="ready", methods=["GET"])
def ready(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


# ----------------------------------------------------------------------- activities
@bp.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}!"


@bp.activity_trigger(input_name="count")
def get_work_batch(count: int) -> list[int]:
    return list(range(1, count + 1))


@bp.activity_trigger(input_name="item")
def process_item(item: int) -> int:
    return item * item


@bp.activity_trigger(input_name="request")
def send_approval_request(request: dict[str, Any]) -> str:
    return f"approval requested from {request['approver']}"


@bp.activity_trigger(input_name="reason")
def escalate(reason: str) -> str:
    return f"escalated: {reason}"


class FlakyCalls:
    """Per key, how often `flaky_step` ran: it fails until the key's failure budget is spent."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}


flaky_calls = FlakyCalls()


@bp.activity_trigger(input_name="request")
def flaky_step(request: dict[str, Any]) -> str:
    key = str(request["key"])
    flaky_calls.calls[key] = flaky_calls.calls.get(key, 0) + 1
    if flaky_calls.calls[key] <= int(request["failures"]):
        raise RuntimeError(f"attempt {flaky_calls.calls[key]} of {key} fails")
    return f"{key} succeeded on attempt {flaky_calls.calls[key]}"


@bp.activity_trigger(input_name="step")
async def marked_step(step: dict[str, Any]) -> int:
    """Append a row per execution (a durable count of runs), return the step's value."""
    from azure.data.tables.aio import TableClient

    table = os.environ.get("DEVHOST_MARKER_TABLE")
    if table:
        async with TableClient.from_connection_string(
            os.environ["AzureWebJobsStorage"],  # noqa: SIM112 (the platform's name)
            table,
        ) as client:
            await client.create_entity(
                {
                    "PartitionKey": str(step["instance"]),
                    "RowKey": f"{step['step']}-{uuid.uuid4().hex}",
                    "step": int(step["step"]),
                    "generation": os.environ.get("DEVHOST_GENERATION", "0"),
                }
            )
    return int(step["value"])


class Concurrency:
    """How many `slow_step` activities ran at once, at most."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0


concurrency = Concurrency()


@bp.activity_trigger(input_name="seconds")
async def slow_step(seconds: float) -> int:
    import asyncio

    concurrency.now += 1
    concurrency.peak = max(concurrency.peak, concurrency.now)
    try:
        await asyncio.sleep(seconds)
    finally:
        concurrency.now -= 1
    return 1


# ----------------------------------------------------------------------- orchestrations
@bp.orchestration_trigger(context_name="context")
def fan_slow(context: df.DurableOrchestrationContext) -> Any:
    count = int(context.get_input())
    results = yield context.task_all(
        [context.call_activity("slow_step", 0.3) for _ in range(count)]
    )
    return sum(results)


@bp.orchestration_trigger(context_name="context")
def chaining(context: df.DurableOrchestrationContext) -> Any:
    """Function chaining: each activity's result feeds the list, in order."""
    result1 = yield context.call_activity("say_hello", "Tokyo")
    result2 = yield context.call_activity("say_hello", "Seattle")
    result3 = yield context.call_activity("say_hello", "London")
    return [result1, result2, result3]


@bp.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext) -> Any:
    """Fan-out/fan-in: get a batch, process every item in parallel, sum the results."""
    batch = yield context.call_activity("get_work_batch", context.get_input())
    tasks = [context.call_activity("process_item", item) for item in batch]
    results = yield context.task_all(tasks)
    return sum(results)


@bp.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext) -> Any:
    """Human interaction: ask, then wait for "Approval" or escalate when the deadline passes."""
    request = context.get_input()
    yield context.call_activity("send_approval_request", request)
    context.set_custom_status("waiting for approval")
    deadline = context.current_utc_datetime + timedelta(seconds=float(request["timeout"]))
    timeout_task = context.create_timer(deadline)
    approval_task = context.wait_for_external_event("Approval")
    winner = yield context.task_any([approval_task, timeout_task])
    if winner == approval_task:
        timeout_task.cancel()
        context.set_custom_status("approved")
        return f"approved by {approval_task.result}"
    context.set_custom_status("escalated")
    return (yield context.call_activity("escalate", "no approval in time"))


@bp.orchestration_trigger(context_name="context")
def eternal(context: df.DurableOrchestrationContext) -> Any:
    """An eternal orchestration: do work, sleep, continue as new, until a stop count."""
    state = context.get_input() or {"round": 0, "greetings": []}
    greeting = yield context.call_activity("say_hello", f"round {state['round']}")
    state = {"round": state["round"] + 1, "greetings": [*state["greetings"], greeting]}
    context.set_custom_status({"round": state["round"]})
    if state["round"] >= int(os.environ.get("DEVHOST_ETERNAL_ROUNDS", "3")):
        return state
    yield context.create_timer(context.current_utc_datetime + timedelta(milliseconds=200))
    context.continue_as_new(state)
    return None


@bp.orchestration_trigger(context_name="context")
def counting(context: df.DurableOrchestrationContext) -> Any:
    """Entities from an orchestration: signal (no answer), then call (the result comes back)."""
    key = context.get_input()
    entity = df.EntityId("tally", key)
    context.signal_entity(entity, "add", 5)
    after_call = yield context.call_entity(entity, "add", 10)
    state = yield context.call_entity(entity, "get")
    try:
        yield context.call_entity(entity, "explode")
        failed = None
    except Exception as exc:
        failed = str(exc)
    return {"after_call": after_call, "state": state, "failed": failed}


@bp.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext) -> Any:
    """call_activity_with_retry: succeeds within the budget, or fails after the last attempt."""
    request = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=3)
    try:
        result = yield context.call_activity_with_retry("flaky_step", options, request)
    except Exception as exc:
        return {"failed": str(exc)}
    return {"result": result}


@bp.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext) -> Any:
    """Sub-orchestrations: two children in parallel, then one that fails twice (with retry)."""
    first = context.call_sub_orchestrator("chaining")
    second = context.call_sub_orchestrator("fan_out_fan_in", 3, f"{context.instance_id}-fan")
    results = yield context.task_all([first, second])
    options = df.RetryOptions(first_retry_interval_in_milliseconds=50, max_number_of_attempts=2)
    try:
        yield context.call_sub_orchestrator_with_retry("failing", options, "child failure")
    except Exception as exc:
        return {"children": results, "failure": str(exc)}
    return {"children": results, "failure": None}


@bp.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity("say_hello", "before the failure")
    raise ValueError(context.get_input() or "failing on purpose")


@bp.orchestration_trigger(context_name="context")
def calls_http(context: df.DurableOrchestrationContext) -> Any:
    """call_http is not supported locally: the task fails with a message that says so."""
    try:
        yield context.call_http("GET", "http://localhost:1/never")
    except Exception as exc:
        return str(exc)
    return None


@bp.orchestration_trigger(context_name="context")
def waiting(context: df.DurableOrchestrationContext) -> Any:
    """Waits for events forever (until terminated); counts them in its custom status."""
    seen = 0
    while True:
        value = yield context.wait_for_external_event("Ping")
        seen += 1
        context.set_custom_status({"seen": seen, "last": value})


@bp.orchestration_trigger(context_name="context")
def marked(context: df.DurableOrchestrationContext) -> Any:
    """The crash test's orchestration: two activities, a durable timer, a third activity, and a
    call to a `tally` entity of its own (its total counts how often the call was applied)."""
    request = context.get_input()
    instance = context.instance_id
    first = yield context.call_activity(
        "marked_step", {"instance": instance, "step": 1, "value": 1}
    )
    second = yield context.call_activity(
        "marked_step", {"instance": instance, "step": 2, "value": 10}
    )
    seconds = float(request.get("timer", 1.0)) if isinstance(request, dict) else 1.0
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    third = yield context.call_activity(
        "marked_step", {"instance": instance, "step": 3, "value": 100}
    )
    applied = yield context.call_entity(df.EntityId("tally", instance), "add", 1)
    return first + second + third + 1000 * applied


@bp.orchestration_trigger(context_name="context")
def bench_flow(context: df.DurableOrchestrationContext) -> Any:
    """The bench's orchestration: three activities and one entity call."""
    key = context.get_input()
    a = yield context.call_activity("process_item", 2)
    b = yield context.call_activity("process_item", 3)
    c = yield context.call_activity("process_item", 4)
    total = yield context.call_entity(df.EntityId("tally", key), "add", a + b + c)
    return total


# ----------------------------------------------------------------------- a small entity
@bp.entity_trigger(context_name="context")
def tally(context: df.DurableEntityContext) -> None:
    total = int(context.get_state(lambda: 0))
    operation = context.operation_name
    if operation == "add":
        total += int(context.get_input())
        context.set_state(total)
        context.set_result(total)
    elif operation == "explode":
        raise RuntimeError("tally cannot explode")
    else:
        context.set_result(total)


app.register_functions(bp)
