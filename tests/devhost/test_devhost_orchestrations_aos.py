# mypy: disable-error-code="untyped-decorator,misc"
"""An orchestration over AOS's own `agent` entity: configure it and read it back by call_entity.

The AOS app is built as function_app.py builds it (create_app), with one blueprint added that
holds the orchestration; AOS's files are untouched. The entity runs through AOS's entity function
(and its history archive) exactly as signals from the HTTP API do.
"""

from __future__ import annotations

import asyncio
from typing import Any

import azure.durable_functions as df
import pytest
from helpers import fast_config, run

from aos import create_app
from aos.functions.container import AppRuntime
from aos.settings import Settings, StorageConnection
from devhost import DevHost
from devhost.azurite import Azurite
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.azurite


def orchestration_blueprint() -> df.Blueprint:
    bp = df.Blueprint()

    @bp.orchestration_trigger(context_name="context")
    def configure_agent(context: df.DurableOrchestrationContext) -> Any:
        request = context.get_input()
        agent = df.EntityId("agent", request["agent_id"])
        summary = yield context.call_entity(agent, "configure", request["spec"])
        document = yield context.call_entity(agent, "get")
        try:
            yield context.call_entity(agent, "configure", {"kind": "no-such-kind"})
            refused = None
        except Exception as exc:
            refused = str(exc)
        return {"summary": summary, "document": document, "refused": refused}

    return bp


def test_an_orchestration_configures_and_reads_an_agent(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    settings = Settings(
        storage=StorageConnection(connection_string=azurite.connection_string),
        task_hub=unique_name.table_name("Hub"),
        events_queue=unique_name.queue_name("events"),
        deadletter_queue=unique_name.queue_name("dead"),
        agents_table=unique_name.table_name("Agents"),
        history_table=unique_name.table_name("History"),
    )
    runtime = AppRuntime(load_settings=lambda: settings, settle_timeout=10.0)
    app = create_app(runtime=runtime)
    app.register_functions(orchestration_blueprint())

    async def scenario() -> None:
        async with DevHost(
            app,
            connection_string=azurite.connection_string,
            hub=settings.task_hub,
            config=fast_config(),
            queues=False,
        ) as host:
            try:
                client = df.DurableOrchestrationClient(host.client_binding())
                spec = {"kind": "generic", "purpose": "Grow revenue through happy customers"}
                instance = await client.start_new(
                    "configure_agent", None, {"agent_id": "orch-1", "spec": spec}
                )
                async with asyncio.timeout(30):
                    assert await host.orchestrations.wait_for(instance) == "Completed"
                status = await client.get_status(instance)
                output = status.output
                assert output["summary"]["agent_id"] == "orch-1"
                assert output["document"]["spec"]["purpose"] == spec["purpose"]
                assert "no-such-kind" in output["refused"]
                read = await client.read_entity_state(df.EntityId("agent", "orch-1"))
                assert read.entity_exists
                assert read.entity_state["spec"]["purpose"] == spec["purpose"]
            finally:
                await runtime.aclose()

    run(scenario())
