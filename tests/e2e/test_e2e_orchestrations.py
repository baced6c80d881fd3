"""The documented orchestration patterns, and one over AOS's agent entity, under `python -m devhost`.

The app is AOS's (create_app) plus the devhost tests' sample orchestrations and one orchestration
that configures an agent through call_entity (tests/e2e/orchestration_e2e_app.py). The durable
client is the SDK's own `DurableOrchestrationClient`, bound to the host process's Durable HTTP API.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest
from process_host import HostProcess

from devhost.durable_api import client_binding
from devhost.host import close_durable_client_session

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

TESTS = Path(__file__).resolve().parent.parent
LIMIT = 60.0


async def _until_done(client: df.DurableOrchestrationClient, instance: str) -> Any:
    async with asyncio.timeout(LIMIT):
        while True:
            status = await client.get_status(instance)
            if status.runtime_status not in (
                None,
                df.OrchestrationRuntimeStatus.Pending,
                df.OrchestrationRuntimeStatus.Running,
            ):
                return status
            await asyncio.sleep(0.1)


def test_documented_patterns_and_an_agent_orchestration_under_python_m_devhost(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"durableTask": {"hubName": "%AOS_TASK_HUB%"}}})
    )
    env = {**host_env, "PYTHONPATH": f"{TESTS / 'e2e'}:{TESTS / 'devhost'}"}
    host = HostProcess(
        env, tmp_path / "devhost.log", ["--root", str(root), "--app", "orchestration_e2e_app"]
    )
    host.start()

    async def scenario() -> None:
        binding = json.dumps(client_binding(host.base_url, host_env["AOS_TASK_HUB"]))
        client = df.DurableOrchestrationClient(binding)
        try:
            chain = await client.start_new("chaining")
            fan = await client.start_new("fan_out_fan_in", None, 5)
            approved = await client.start_new("approval", None, {"approver": "ana", "timeout": 60})
            late = await client.start_new("approval", None, {"approver": "bo", "timeout": 1})
            eternal = await client.start_new("eternal")
            spec = {"kind": "generic", "purpose": "Grow revenue through happy customers"}
            agent = await client.start_new(
                "configure_agent", None, {"agent_id": "orch-agent", "spec": spec}
            )
            async with asyncio.timeout(LIMIT):
                while True:
                    if (await client.get_status(approved)).custom_status == "waiting for approval":
                        break
                    await asyncio.sleep(0.1)
            await client.raise_event(approved, "Approval", "ana")

            expected = {
                chain: ["Hello Tokyo!", "Hello Seattle!", "Hello London!"],
                fan: 1 + 4 + 9 + 16 + 25,
                approved: "approved by ana",
                late: "escalated: no approval in time",
                eternal: {
                    "round": 3,
                    "greetings": ["Hello round 0!", "Hello round 1!", "Hello round 2!"],
                },
            }
            for instance, output in expected.items():
                status = await _until_done(client, instance)
                assert status.runtime_status == df.OrchestrationRuntimeStatus.Completed
                assert status.output == output
            status = await _until_done(client, agent)
            assert status.runtime_status == df.OrchestrationRuntimeStatus.Completed
            assert status.output["summary"]["agent_id"] == "orch-agent"
            assert status.output["document"]["spec"]["purpose"] == spec["purpose"]
            state = await client.read_entity_state(df.EntityId("agent", "orch-agent"))
            assert state.entity_state["spec"]["purpose"] == spec["purpose"]
        finally:
            await close_durable_client_session()

    try:
        asyncio.run(scenario())
    finally:
        host.stop()
