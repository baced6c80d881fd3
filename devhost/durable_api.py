"""The Durable Functions HTTP API, as far as the durable client in this app needs it.

`DurableOrchestrationClient` talks to the host over HTTP, relative to the `rpcBaseUrl` in its
binding. The local host answers the entity endpoints (signal: 202 once the signal is stored; read:
200 with the state or 404) and, because it runs no orchestrations, answers every orchestration
endpoint with 501 and a problem+json body that says so. The client binding JSON the host passes to
`durable_client_input` parameters is built here too.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from azure.core.exceptions import AzureError

from devhost.entity_runtime import EntityRuntime, UnknownEntityError
from devhost.entity_store import EntityStore
from devhost.orchestration_runtime import (
    TERMINAL,
    InstanceExistsError,
    OrchestrationRuntime,
    UnknownOrchestratorError,
    history_summary,
    timestamp,
)
from devhost.orchestration_store import StoredInstance
from devhost.problem import problem

__all__ = ["WEBHOOK_PATH", "client_binding", "durable_routes"]

log = logging.getLogger("devhost.durable")

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
UNSUPPORTED = (
    "The local development host does not support this Durable HTTP API operation (suspend, "
    "resume, rewind, restart, purge by query, entity listing). Use the Functions host "
    "(`func start` or Azure) for it."
)


def client_binding(base_url: str, hub: str, connection: str = "Storage") -> dict[str, Any]:
    """The JSON the host passes to a `durable_client_input` parameter (a dict: dump it)."""
    base = f"{base_url.rstrip('/')}{WEBHOOK_PATH}"
    query = f"taskHub={hub}&connection={connection}"
    instance = f"{base}/instances/INSTANCEID"
    return {
        "taskHubName": hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
            f"?{query}",
            "createAndWaitOnNewInstancePostUri": f"{base}/orchestrators/{{functionName}}"
            f"[/{{instanceId}}]?timeout={{timeoutInSeconds}}"
            f"&pollingInterval={{intervalInSeconds}}&{query}",
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{instance}?{query}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{instance}?{query}",
            "restartPostUri": f"{instance}/restart?{query}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
        },
        "baseUrl": base,
        "requiredQueryStringParameters": query,
        "rpcBaseUrl": f"{base}/",
        "httpBaseUrl": "",
        "maxGrpcMessageSizeInBytes": 0,
        "grpcHttpClientTimeout": "00:01:40",
    }


def durable_routes(
    runtime: EntityRuntime, orchestrations: OrchestrationRuntime | None = None
) -> list[web.AbstractRouteDef]:
    """aiohttp routes for the entity and orchestration endpoints of the Durable HTTP API."""

    async def signal(request: web.Request) -> web.StreamResponse:
        name, key = request.match_info["name"], request.match_info["key"]
        operation = request.query.get("op")
        if not operation:
            return problem(400, "Missing operation", "the query parameter 'op' is required")
        body = await request.text()
        input_text = body if body else None
        if not EntityStore.signal_fits(input_text):
            return problem(413, "Operation input too large", f"{len(body)} characters")
        try:
            await runtime.signal(name, key, operation, input_text)
        except UnknownEntityError as exc:
            return problem(400, "Unknown entity", str(exc))
        except AzureError as exc:
            log.exception("storing a signal for @%s@%s failed", name, key)
            return problem(503, "Signal not stored", f"storage error: {exc}")
        return web.Response(status=202)

    async def read(request: web.Request) -> web.StreamResponse:
        name, key = request.match_info["name"], request.match_info["key"]
        stored = await runtime.read(name, key)
        if not stored.exists:
            return web.Response(status=404)
        text = stored.state if stored.state is not None else "null"
        return web.Response(status=200, text=text, content_type="application/json")

    async def unsupported(request: web.Request) -> web.StreamResponse:
        return problem(501, "Not supported locally", UNSUPPORTED)

    base = WEBHOOK_PATH
    routes: list[web.AbstractRouteDef] = [
        web.post(base + "/entities/{name}/{key}", signal),
        web.get(base + "/entities/{name}/{key}", read),
        web.route("*", base + "/entities", unsupported),
        web.route("*", base + "/entities/{name}", unsupported),
    ]
    if orchestrations is not None:
        routes += orchestration_routes(orchestrations)
    routes += [
        web.route("*", base + "/orchestrators/{tail:.*}", unsupported),
        web.route("*", base + "/instances", unsupported),
        web.route("*", base + "/instances/{tail:.*}", unsupported),
    ]
    return routes


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _value(text: str | None) -> Any:
    """A stored JSON text as the value the status API shows (the text itself if not JSON)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _status_json(
    stored: StoredInstance, *, show_input: bool, history: bool, history_output: bool
) -> dict[str, Any]:
    record = stored.record
    body: dict[str, Any] = {
        "name": record.name,
        "instanceId": record.instance_id,
        "runtimeStatus": record.status,
        "input": _value(record.input) if show_input else None,
        "customStatus": _value(record.custom_status),
        "output": _value(record.output),
        "createdTime": record.created,
        "lastUpdatedTime": record.updated,
    }
    if history:
        body["historyEvents"] = history_summary(stored.history, history_output)
        body["history"] = body["historyEvents"]
    return body


_STATUS_CODES = {"Completed": 200, "Failed": 500, "Terminated": 400}


def orchestration_routes(runtime: OrchestrationRuntime) -> list[web.AbstractRouteDef]:
    """Start, status, query, raise event, terminate and purge, as DurableOrchestrationClient
    calls them (request bodies are JSON text encoded once more, as for entities)."""

    def management(request: web.Request, instance_id: str) -> dict[str, Any]:
        base = f"{request.scheme}://{request.host}{WEBHOOK_PATH}/instances/{instance_id}"
        return {
            "id": instance_id,
            "statusQueryGetUri": base,
            "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}",
            "terminatePostUri": f"{base}/terminate?reason={{text}}",
            "rewindPostUri": f"{base}/rewind?reason={{text}}",
            "purgeHistoryDeleteUri": base,
            "restartPostUri": f"{base}/restart",
            "suspendPostUri": f"{base}/suspend?reason={{text}}",
            "resumePostUri": f"{base}/resume?reason={{text}}",
        }

    async def body_text(request: web.Request) -> str | None:
        raw = await request.text()
        if not raw:
            return None
        try:
            decoded = json.loads(raw)
        except ValueError:
            return raw
        return decoded if isinstance(decoded, str) else raw

    async def start(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        instance_id = request.match_info.get("instance_id") or None
        try:
            started = await runtime.start_new(name, instance_id, await body_text(request))
        except UnknownOrchestratorError as exc:
            return _json(400, {"ExceptionMessage": str(exc)})
        except InstanceExistsError as exc:
            return _json(409, str(exc))
        except AzureError as exc:
            log.exception("starting %s failed", name)
            return problem(503, "Instance not stored", f"storage error: {exc}")
        body = management(request, started)
        response = _json(202, body)
        response.headers["Location"] = body["statusQueryGetUri"]
        return response

    async def status(request: web.Request) -> web.StreamResponse:
        instance_id = request.match_info["instance_id"]
        stored = await runtime.status(instance_id)
        if stored is None:
            return _json(404, {"message": f"No instance with ID {instance_id!r} found."})

        def flag(name: str, default: str) -> bool:
            return request.query.get(name, default).lower() == "true"

        body = _status_json(
            stored,
            show_input=flag("showInput", "true"),
            history=flag("showHistory", "false"),
            history_output=flag("showHistoryOutput", "false"),
        )
        return _json(_STATUS_CODES.get(stored.record.status, 202), body)

    async def query(request: web.Request) -> web.StreamResponse:
        wanted = {s for s in request.query.get("runtimeStatus", "").split(",") if s}
        prefix = request.query.get("instanceIdPrefix", "")
        low = request.query.get("createdTimeFrom")
        high = request.query.get("createdTimeTo")
        found = []
        for record in await runtime.records():
            if wanted and record.status not in wanted:
                continue
            if prefix and not record.instance_id.startswith(prefix):
                continue
            if low and record.created < _normal(low):
                continue
            if high and record.created > _normal(high):
                continue
            found.append(
                _status_json(
                    StoredInstance(record, [], [], [], []),
                    show_input=request.query.get("showInput", "true").lower() == "true",
                    history=False,
                    history_output=False,
                )
            )
        return _json(200, found)

    async def raise_event(request: web.Request) -> web.StreamResponse:
        instance_id = request.match_info["instance_id"]
        stored = await runtime.status(instance_id)
        if stored is None:
            return _json(404, f"No instance with ID {instance_id!r} found.")
        if stored.record.status in TERMINAL:
            return _json(410, f"Instance {instance_id!r} is {stored.record.status}.")
        await runtime.raise_event(
            instance_id, request.match_info["event"], await body_text(request)
        )
        return web.Response(status=202)

    async def terminate(request: web.Request) -> web.StreamResponse:
        instance_id = request.match_info["instance_id"]
        stored = await runtime.status(instance_id)
        if stored is None:
            return _json(404, f"No instance with ID {instance_id!r} found.")
        if stored.record.status in TERMINAL:
            return _json(410, f"Instance {instance_id!r} is {stored.record.status}.")
        await runtime.terminate(instance_id, request.query.get("reason", ""))
        return web.Response(status=202)

    async def purge(request: web.Request) -> web.StreamResponse:
        instance_id = request.match_info["instance_id"]
        stored = await runtime.status(instance_id)
        if stored is None:
            return _json(404, {"instancesDeleted": 0})
        if stored.record.status not in TERMINAL:
            return _json(
                409, f"Instance {instance_id!r} is {stored.record.status}; terminate it first."
            )
        await runtime.purge(stored)
        return _json(200, {"instancesDeleted": 1})

    base = WEBHOOK_PATH
    return [
        web.post(base + "/orchestrators/{name}", start),
        web.post(base + "/orchestrators/{name}/{instance_id}", start),
        web.get(base + "/instances", query),
        web.get(base + "/instances/", query),
        web.get(base + "/instances/{instance_id}", status),
        web.delete(base + "/instances/{instance_id}", purge),
        web.post(base + "/instances/{instance_id}/raiseEvent/{event}", raise_event),
        web.post(base + "/instances/{instance_id}/terminate", terminate),
    ]


def _normal(text: str) -> str:
    """A query's ISO time in the stored timestamp format, so they compare as strings."""
    from datetime import UTC, datetime

    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return timestamp(when.astimezone(UTC))
