# mypy: disable-error-code="untyped-decorator"
"""A small function app used only by the devhost tests: one of each trigger the host serves.

Queue names come from app settings (`%DEVHOST_TEST_QUEUE%`) so each test can point the app at its
own queue.
"""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
bp = df.Blueprint()


@bp.route(route="items/{item_id}/{part?}", methods=["GET", "POST"])
def items(req: func.HttpRequest) -> func.HttpResponse:
    """Echo what the host passed in, so tests can check the request translation."""
    body = req.get_body().decode()
    echo = {
        "method": req.method,
        "route": dict(req.route_params),
        "query": dict(req.params),
        "header": req.headers.get("x-test"),
        "body": body,
        "url": req.url,
    }
    return func.HttpResponse(json.dumps(echo), mimetype="application/json", status_code=200)


@bp.route(route="items/special", methods=["GET"])
def special(req: func.HttpRequest) -> func.HttpResponse:
    """A literal route that must win over `items/{item_id}`."""
    return func.HttpResponse("special", headers={"Content-Type": "text/x-special"})


@bp.route(route="fail", methods=["GET"])
def fail(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom")


@bp.route(route="counters/{key}", methods=["POST", "GET"])
@bp.durable_client_input(client_name="client")
async def counters(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """POST: signal `add` with the JSON body; GET: the entity's persisted state."""
    entity = df.EntityId("counter", req.route_params["key"])
    if req.method == "POST":
        await client.signal_entity(entity, req.params.get("op", "add"), req.get_json())
        return func.HttpResponse(status_code=202)
    state = await client.read_entity_state(entity)
    if not state.entity_exists:
        return func.HttpResponse(status_code=404)
    return func.HttpResponse(json.dumps(state.entity_state), mimetype="application/json")


@bp.route(route="orchestrations/{name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def orchestrations(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Tries to start an orchestration; this app has none, so the client's error comes back."""
    try:
        await client.start_new(req.route_params["name"])
    except Exception as exc:
        return func.HttpResponse(str(exc), status_code=501)
    return func.HttpResponse(status_code=202)


@bp.queue_trigger(
    arg_name="msg", queue_name="%DEVHOST_TEST_QUEUE%", connection="AzureWebJobsStorage"
)
@bp.durable_client_input(client_name="client")
async def on_message(msg: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
    """`{"key": k, "amount": n}` adds n to counter k; `{"fail": true}` always fails."""
    body: dict[str, Any] = json.loads(msg.get_body())
    if body.get("fail"):
        raise ValueError("this message always fails")
    await client.signal_entity(df.EntityId("counter", body["key"]), "add", body["amount"])


@bp.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    """State `{"total": int, "ops": int, "seen": [...]}`; `add` records each input in order."""
    state: dict[str, Any] = context.get_state(lambda: {"total": 0, "ops": 0, "seen": []})
    operation = context.operation_name
    if operation == "add":
        amount = context.get_input()
        new = {
            "total": state["total"] + int(amount),
            "ops": state["ops"] + 1,
            "seen": [*state["seen"], amount][-2000:],
        }
        context.set_state(new)
        context.set_result(new["total"])
    elif operation == "big":
        size = int(context.get_input())
        context.set_state({**state, "blob": "x" * size})
        context.set_result(None)
    elif operation == "delete":
        context.set_result(None)  # before destruct: set_result marks the entity as existing
        context.destruct_on_exit()
    elif operation == "explode":
        raise RuntimeError("explode")
    else:
        context.set_result(state)


class FlakyInvocations:
    """Counts the invocations of the ``flaky`` entity per key. Its keys say how often an
    invocation fails before one succeeds: ``fails-<n>``."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}

    def __call__(self, context: func.EntityContext) -> str:
        key = json.loads(context.body)["self"]["key"]
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.attempts[key] <= int(key.removeprefix("fails-")):
            raise RuntimeError(f"invocation {self.attempts[key]} for {key} fails")
        handle = counter._function.get_user_function()  # the SDK's handle of the counter
        result: str = handle(context)
        return result


flaky_invocations = FlakyInvocations()


@bp.function_name("flaky")
@bp.generic_trigger(arg_name="context", type="entityTrigger", entityName="flaky")
def flaky(context: func.EntityContext) -> str:
    """The counter, behind an invocation that fails before it runs (as an archive write might)."""
    return flaky_invocations(context)


app.register_functions(bp)
