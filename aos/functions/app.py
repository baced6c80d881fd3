"""``create_app``: the AOS function app, ready for ``function_app.py`` to expose as ``app``."""

from __future__ import annotations

import azure.functions as func

from aos.agents import AgentKinds
from aos.functions.container import AppRuntime
from aos.functions.entity_function import entity_blueprint
from aos.functions.http_functions import http_blueprint
from aos.functions.mcp_function import mcp_blueprint
from aos.functions.queue_functions import queue_blueprint
from aos.functions.reminder_functions import reminder_blueprint
from aos.functions.timer_functions import maintenance_blueprint
from aos.functions.turn_functions import turn_blueprint

__all__ = ["AosFunctionApp", "create_app"]


class AosFunctionApp(func.FunctionApp):
    """The function app, holding the ``AppRuntime`` its functions share.

    ``aclose`` releases the runtime's storage clients; hosts that stop cleanly (the local host,
    tests) call it. The Functions host simply ends the process.
    """

    def __init__(self, runtime: AppRuntime) -> None:
        super().__init__(http_auth_level=func.AuthLevel.FUNCTION)
        self.runtime = runtime

    async def aclose(self) -> None:
        await self.runtime.aclose()


def create_app(
    kinds: AgentKinds | None = None, runtime: AppRuntime | None = None
) -> AosFunctionApp:
    """Build the app. Pass ``kinds`` to add your own agent classes::

    kinds = AgentKinds.builtin()
    kinds.register(SalesAgent)
    app = create_app(kinds)
    """
    runtime = runtime or AppRuntime(kinds)
    app = AosFunctionApp(runtime)
    app.register_functions(entity_blueprint(runtime))
    app.register_functions(http_blueprint(runtime))
    app.register_functions(queue_blueprint(runtime))
    app.register_functions(maintenance_blueprint(runtime))
    app.register_functions(mcp_blueprint(runtime))
    app.register_functions(reminder_blueprint())
    app.register_functions(turn_blueprint(runtime))
    return app
