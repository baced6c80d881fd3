"""``create_app``: the AOS function app, ready for ``function_app.py`` to expose as ``app``."""

from __future__ import annotations

import azure.functions as func

from aos.agents import AgentKinds
from aos.functions.entities import entity_blueprint
from aos.functions.http_api import http_blueprint
from aos.functions.maintenance import maintenance_blueprint
from aos.functions.queue_delivery import queue_blueprint
from aos.functions.runtime import AppRuntime

__all__ = ["create_app"]


def create_app(
    kinds: AgentKinds | None = None, runtime: AppRuntime | None = None
) -> func.FunctionApp:
    """Build the app. Pass ``kinds`` to add your own agent classes::

    kinds = AgentKinds.builtin()
    kinds.register(SalesAgent)
    app = create_app(kinds)
    """
    runtime = runtime or AppRuntime(kinds)
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(entity_blueprint(runtime))
    app.register_functions(http_blueprint(runtime))
    app.register_functions(queue_blueprint(runtime))
    app.register_functions(maintenance_blueprint(runtime))
    return app
