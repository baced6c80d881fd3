# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""The HTTP functions: one Azure Function per path of ``aos.api.paths.FUNCTIONS``.

Every function is ``AuthLevel.FUNCTION`` (Azure requires a function key, local hosts do not) and
gets the durable client binding, which the services use to signal and read agent entities, and a
queue output binding on the events queue, which carries the events the request sent
(``aos.functions.events_output``: the host's own listener then polls at once). The handlers and
their table (``aos.api.http``) load on the first request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import azure.durable_functions as df
import azure.functions as func

from aos.api.paths import FUNCTIONS
from aos.functions.container import AppRuntime
from aos.functions.events_output import events_output, sending_through

__all__ = ["http_blueprint"]


def http_blueprint(runtime: AppRuntime) -> func.Blueprint:
    bp = func.Blueprint()
    for function, path in FUNCTIONS.items():
        serve = _function(runtime, function)
        serve = bp.durable_client_input(client_name="client")(serve)  # innermost, as documented
        serve = events_output(bp)(serve)
        serve = bp.route(
            route=path.route, methods=list(path.methods), auth_level=func.AuthLevel.FUNCTION
        )(serve)
        bp.function_name(name=function)(serve)
    return bp


def _function(runtime: AppRuntime, function: str) -> Callable[..., Awaitable[func.HttpResponse]]:
    async def serve(
        req: func.HttpRequest, client: df.DurableOrchestrationClient, outbox: func.Out[list[str]]
    ) -> func.HttpResponse:
        from aos.api import http  # the handlers load on the first request (a shorter cold start)

        return await sending_through(outbox, http.dispatch(function, req, client, runtime))

    serve.__name__ = serve.__qualname__ = function
    return serve
