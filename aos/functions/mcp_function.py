# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""The MCP endpoint, ``/api/mcp``: the server of ``aos.api.mcp`` behind an ordinary HTTP trigger.

Like the other routes it is ``AuthLevel.FUNCTION`` (Azure wants the function key, as
``x-functions-key``) and gets the durable client binding and the queue output binding on the events
queue that carries the events a call sent (``aos.functions.events_output``: the host's listener then
polls at once, so ``send_event`` wakes an idle app as a POST does). Each POST is one stateless MCP
exchange, bridged to the SDK's ASGI app with ``func.AsgiMiddleware``. The SDK loads on the first
request, so indexing the app does not pay for it. GET (the optional server-to-client stream) and DELETE (ending
a session) answer 405: a stateless endpoint offers neither.

Before the SDK sees a request, the body must be ``application/json`` (else 415) and at most 64 KB,
the HTTP API's limit (else 413), both as problem+json. Outside Azure (no ``WEBSITE_INSTANCE_ID``:
the local host, Core Tools) the SDK's DNS-rebinding protection is on as well: ``Host`` must be
localhost, 127.0.0.1, [::1] or in ``AOS_DEVHOST_ALLOWED_HOSTS``, and a browser's ``Origin`` one of
those (the SDK answers 421 or 403); ``*`` in that setting turns the check off, as for the local
host. In Azure the function key is the gate, and the app's real host
names (custom domains, front doors) are not known to it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import azure.durable_functions as df
import azure.functions as func

from aos.functions.container import AppRuntime
from aos.functions.events_output import events_output, sending_through

__all__ = ["MCP_ROUTE", "mcp_blueprint"]

MCP_ROUTE = "mcp"


def mcp_blueprint(runtime: AppRuntime) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name(name="mcp")
    @bp.route(
        route=MCP_ROUTE, methods=["DELETE", "GET", "POST"], auth_level=func.AuthLevel.FUNCTION
    )
    @events_output(bp)
    @bp.durable_client_input(client_name="client")  # innermost, as documented
    async def mcp(
        req: func.HttpRequest, client: df.DurableOrchestrationClient, outbox: func.Out[list[str]]
    ) -> func.HttpResponse:
        return await sending_through(outbox, _serve(runtime, req, client))

    return bp


async def _serve(runtime: AppRuntime, req: func.HttpRequest, client: Any) -> func.HttpResponse:
    from aos.api.problems import MethodNotAllowedError, problem_response
    from aos.api.requests import CORRELATION_HEADER, MAX_BODY_BYTES, correlation_id

    correlation = correlation_id(req)
    try:
        if req.method.upper() != "POST":
            raise MethodNotAllowedError(req.method.upper(), ["POST"])
        _check_body(req, MAX_BODY_BYTES)
        from aos.api.mcp import asgi_app, local_transport_security, mcp_server

        hosts = runtime.settings.local_allowed_hosts
        local = not runtime.settings.in_azure and "*" not in hosts
        security = local_transport_security(hosts) if local else None
        server = mcp_server(
            runtime.manager(client), messages=runtime.messages(client), correlation_id=correlation
        )
        app = asgi_app(server, security=security, max_body_bytes=MAX_BODY_BYTES)
        response: func.HttpResponse = await func.AsgiMiddleware(app).handle_async(req)
    except Exception as exc:
        return problem_response(exc, instance=urlsplit(req.url).path, correlation_id=correlation)
    response.headers[CORRELATION_HEADER] = correlation
    return response


def _check_body(req: func.HttpRequest, limit: int) -> None:
    from aos.errors import FieldError, PayloadTooLargeError, UnsupportedMediaTypeError

    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaTypeError(
            f"Send MCP messages as application/json, not {content_type or 'no Content-Type'}",
            [FieldError(("header", "content-type"), "must be application/json", "media_type")],
        )
    size = len(req.get_body() or b"")
    if size > limit:
        raise PayloadTooLargeError(f"The body is {size} bytes; the limit is {limit}")
