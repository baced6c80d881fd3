# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""The MCP endpoint, ``/api/mcp``: the server of ``aos.mcp`` behind an ordinary HTTP trigger.

Like the other routes it is ``AuthLevel.FUNCTION`` (Azure wants the function key, as
``x-functions-key``) and gets the durable client binding. Each POST is one stateless MCP exchange,
bridged to the SDK's ASGI app with ``func.AsgiMiddleware``. The SDK loads on the first request, so
indexing the app does not pay for it. GET (the optional server-to-client stream) and DELETE (ending
a session) answer 405: a stateless endpoint offers neither.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import azure.durable_functions as df
import azure.functions as func

from aos.functions.runtime import AppRuntime

__all__ = ["MCP_ROUTE", "mcp_blueprint"]

MCP_ROUTE = "mcp"


def mcp_blueprint(runtime: AppRuntime) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name(name="mcp")
    @bp.route(
        route=MCP_ROUTE, methods=["DELETE", "GET", "POST"], auth_level=func.AuthLevel.FUNCTION
    )
    @bp.durable_client_input(client_name="client")
    async def mcp(
        req: func.HttpRequest, client: df.DurableOrchestrationClient
    ) -> func.HttpResponse:
        return await _serve(runtime, req, client)

    return bp


async def _serve(runtime: AppRuntime, req: func.HttpRequest, client: Any) -> func.HttpResponse:
    from aos.functions.http_support import CORRELATION_HEADER, correlation_id
    from aos.functions.problems import MethodNotAllowedError, problem_response

    correlation = correlation_id(req)
    try:
        if req.method.upper() != "POST":
            raise MethodNotAllowedError(req.method.upper(), ["POST"])
        from aos.mcp import asgi_app, mcp_server

        server = mcp_server(runtime.manager(client), correlation_id=correlation)
        response: func.HttpResponse = await func.AsgiMiddleware(asgi_app(server)).handle_async(req)
    except Exception as exc:
        return problem_response(exc, instance=urlsplit(req.url).path, correlation_id=correlation)
    response.headers[CORRELATION_HEADER] = correlation
    return response
