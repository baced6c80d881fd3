# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""The HTTP functions: one Azure Function per route of ``aos.functions.routes.FUNCTIONS``.

Every function is ``AuthLevel.FUNCTION`` (Azure requires a function key, local hosts do not) and
gets the durable client binding, which the manager uses to signal and read agent entities. The
handlers (``aos.functions.http_handlers``) load on the first request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import azure.durable_functions as df
import azure.functions as func

from aos.functions.container import AppRuntime
from aos.functions.routes import FUNCTIONS, OPERATIONS

if TYPE_CHECKING:
    from aos.functions.http_handlers import HttpApi

__all__ = ["http_blueprint"]


def http_blueprint(runtime: AppRuntime) -> func.Blueprint:
    bp = func.Blueprint()
    handlers: list[HttpApi] = []  # created on first use, then shared by every function

    def api() -> HttpApi:
        if not handlers:
            from aos.functions.http_handlers import HttpApi

            handlers.append(HttpApi(runtime))
        return handlers[0]

    for function, route in FUNCTIONS.items():
        methods = sorted({op.method for op in OPERATIONS if op.function == function})
        serve = _function(api, function)
        serve = bp.durable_client_input(client_name="client")(serve)
        serve = bp.route(route=route, methods=methods, auth_level=func.AuthLevel.FUNCTION)(serve)
        bp.function_name(name=function)(serve)
    return bp


def _function(
    api: Callable[[], HttpApi], function: str
) -> Callable[..., Awaitable[func.HttpResponse]]:
    async def serve(
        req: func.HttpRequest, client: df.DurableOrchestrationClient
    ) -> func.HttpResponse:
        return await api().dispatch(function, req, client)

    serve.__name__ = serve.__qualname__ = function
    return serve
