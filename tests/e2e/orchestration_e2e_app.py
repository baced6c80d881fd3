# mypy: disable-error-code="untyped-decorator,misc"
"""The AOS app (as function_app.py builds it) plus the devhost tests' orchestrations and one
orchestration over AOS's `agent` entity: the app `test_e2e_orchestrations.py` runs under
`python -m devhost`. AOS's own files are untouched."""

from __future__ import annotations

import importlib
from typing import Any

import azure.durable_functions as df

from aos import AgentKinds, create_app

agents = df.Blueprint()


@agents.orchestration_trigger(context_name="context")
def configure_agent(context: df.DurableOrchestrationContext) -> Any:
    """Configure an agent through call_entity, then read it back the same way."""
    request = context.get_input()
    agent = df.EntityId("agent", request["agent_id"])
    summary = yield context.call_entity(agent, "configure", request["spec"])
    document = yield context.call_entity(agent, "get")
    return {"summary": summary, "document": document}


# tests/devhost is on PYTHONPATH in the test that runs this app (a plain import is not resolvable
# for mypy from here)
samples = importlib.import_module("orchestration_sample_app").bp
app = create_app(AgentKinds.builtin())
app.register_functions(samples)
app.register_functions(agents)
