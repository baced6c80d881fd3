"""The Durable Functions HTTP API, as far as the durable client in this app needs it.

`DurableOrchestrationClient` talks to the host over HTTP, relative to the `rpcBaseUrl` in its
binding. The local host answers the entity endpoints (signal: 202 once the signal is stored; read:
200 with the state or 404) and, because it runs no orchestrations, answers every orchestration
endpoint with 501 and a problem+json body that says so. The client binding JSON the host passes to
`durable_client_input` parameters is built here too.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from azure.core.exceptions import AzureError

from devhost.entity_runtime import EntityRuntime, UnknownEntityError
from devhost.entity_store import EntityStore
from devhost.problem import problem

__all__ = ["WEBHOOK_PATH", "client_binding", "durable_routes"]

log = logging.getLogger("devhost.durable")

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
ORCHESTRATIONS_UNSUPPORTED = (
    "The local development host runs Durable entities only; orchestrations (start, status, raise "
    "event, terminate, suspend, resume, rewind, restart, purge) are not supported. Use the "
    "Functions host (`func start` or Azure) for orchestrations."
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


def durable_routes(runtime: EntityRuntime) -> list[web.AbstractRouteDef]:
    """aiohttp routes for the entity endpoints and the unsupported orchestration endpoints."""

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
        return problem(501, "Orchestrations not supported locally", ORCHESTRATIONS_UNSUPPORTED)

    base = WEBHOOK_PATH
    return [
        web.post(base + "/entities/{name}/{key}", signal),
        web.get(base + "/entities/{name}/{key}", read),
        web.route("*", base + "/entities", unsupported),
        web.route("*", base + "/entities/{name}", unsupported),
        web.route("*", base + "/orchestrators/{tail:.*}", unsupported),
        web.route("*", base + "/instances", unsupported),
        web.route("*", base + "/instances/{tail:.*}", unsupported),
    ]
