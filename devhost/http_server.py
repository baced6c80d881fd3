"""Serve a function app's HTTP triggers with aiohttp, as `http://<host>:<port>/<prefix>/<route>`.

Requests become `func.HttpRequest` (method, URL, headers, query, route parameters, body) and the
function's `func.HttpResponse` becomes the HTTP response. Every auth level is open, as under Core
Tools: function and admin keys are not checked locally.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web

from devhost.app_loader import FunctionSpec
from devhost.problem import problem
from devhost.routes import Route, compile_route, sort_key

__all__ = ["HttpFunction", "http_functions", "http_handler"]

log = logging.getLogger("devhost.http")
MAX_BODY = 100 * 1024 * 1024  # the Functions host's request size limit
MCP_WEBHOOK = "runtime/webhooks/mcp"
"""Local-only alias of a function routed at `mcp`: where the Functions MCP extension serves in
Azure, so MCP clients configured for that path find the app's endpoint locally too."""

Invoke = Callable[[FunctionSpec, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class HttpFunction:
    spec: FunctionSpec
    route: Route
    methods: frozenset[str] | None  # None = every method


def http_functions(specs: list[FunctionSpec], prefix: str) -> list[HttpFunction]:
    """The HTTP-triggered functions, most specific route first."""
    found = []
    for spec in specs:
        if spec.trigger_type != "httpTrigger":
            continue
        template = spec.trigger.get("route") or spec.name
        methods = spec.trigger.get("methods")
        allowed = frozenset(str(m).upper() for m in methods) if methods else None
        found.append(HttpFunction(spec, compile_route(template, prefix), allowed))
        if template.strip("/").lower() == "mcp":
            found.append(HttpFunction(spec, compile_route(MCP_WEBHOOK, ""), allowed))
    return sorted(found, key=lambda f: sort_key(f.route))


def _to_response(result: Any) -> web.Response:
    if result is None:
        return web.Response(status=204)
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers)
        if not any(k.lower() == "content-type" for k in headers):
            mimetype = result.mimetype or "text/plain"
            headers["Content-Type"] = (
                f"{mimetype}; charset={result.charset}" if result.charset else mimetype
            )
        return web.Response(status=result.status_code, body=result.get_body(), headers=headers)
    if isinstance(result, bytes | str):
        return web.Response(
            status=200, body=result if isinstance(result, bytes) else result.encode()
        )
    raise TypeError(f"unsupported HTTP function result {type(result).__name__}")


def http_handler(functions: list[HttpFunction], invoke: Invoke) -> Callable[..., Any]:
    """One aiohttp handler that dispatches to the matching function."""

    async def handle(request: web.Request) -> web.StreamResponse:
        allowed: set[str] = set()
        for function in functions:
            params = function.route.match(request.path)
            if params is None:
                continue
            if function.methods is not None and request.method not in function.methods:
                allowed |= function.methods
                continue
            body = await request.read()
            trigger_name = str(function.spec.trigger["name"])
            req = func.HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                params=dict(request.query),
                route_params=params,
                body=body,
            )
            try:
                result = await invoke(function.spec, {trigger_name: req})
                return _to_response(result)
            except Exception:
                log.exception("function %s failed", function.spec.name)
                return problem(500, "Function failed", f"{function.spec.name} raised; see host log")
        if allowed:
            response = problem(405, "Method not allowed", f"{request.method} {request.path}")
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        return problem(404, "Not found", f"no function serves {request.path}")

    return handle
