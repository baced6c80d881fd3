# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""The Durable entity function ``agent`` (logic in ``aos.entity``)."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from aos.entity import ENTITY_NAME
from aos.functions.runtime import AppRuntime

__all__ = ["entity_blueprint"]


def entity_blueprint(runtime: AppRuntime) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.entity_trigger(context_name="context", entity_name=ENTITY_NAME)
    def agent(context: df.DurableEntityContext) -> None:
        """One perpetual agent per entity key; operations as in DESIGN.md section 2."""
        runtime.entity(context)

    return bp
