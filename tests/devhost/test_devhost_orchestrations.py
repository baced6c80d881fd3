"""Orchestrations under the local host: the SDK's orchestrator handle, replayed over stored history.

The app is tests/devhost/orchestration_sample_app.py (not AOS); the durable client is the SDK's own
`DurableOrchestrationClient`, talking to the host's Durable HTTP API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import azure.durable_functions as df
import pytest
from helpers import eventually, fast_config, run

from devhost import DevHost
from devhost.azurite import Azurite
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.azurite
LIMIT = 30.0


@asynccontextmanager
async def orchestration_host(
    azurite: Azurite, hub: str
) -> AsyncIterator[tuple[DevHost, df.DurableOrchestrationClient]]:
    import orchestration_sample_app

    async with DevHost(
        orchestration_sample_app.app,
        connection_string=azurite.connection_string,
        hub=hub,
        config=fast_config(),
    ) as host:
        yield host, df.DurableOrchestrationClient(host.client_binding())


async def finished(
    host: DevHost, client: df.DurableOrchestrationClient, instance_id: str
) -> df.DurableOrchestrationStatus:
    async with asyncio.timeout(LIMIT):
        await host.orchestrations.wait_for(instance_id)
    return await client.get_status(instance_id, show_history=True, show_history_output=True)


def test_the_documented_patterns_complete_with_the_documented_results(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    async def scenario() -> None:
        async with orchestration_host(azurite, unique_name.table_name("Hub")) as (host, client):
            chain = await client.start_new("chaining")
            fan = await client.start_new("fan_out_fan_in", None, 10)
            approved = await client.start_new("approval", None, {"approver": "ana", "timeout": 60})
            late = await client.start_new("approval", None, {"approver": "bo", "timeout": 0.5})
            eternal = await client.start_new("eternal", "eternal-1")
            assert eternal == "eternal-1"

            status = await finished(host, client, chain)
            assert status.runtime_status == df.OrchestrationRuntimeStatus.Completed
            assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
            kinds = [e["EventType"] for e in status.historyEvents]
            assert kinds[0] == "ExecutionStarted"
            assert kinds.count("TaskScheduled") == kinds.count("TaskCompleted") == 3
            assert kinds[-1] == "ExecutionCompleted"

            assert (await finished(host, client, fan)).output == sum(i * i for i in range(1, 11))

            async def asked() -> bool:
                status = await client.get_status(approved)
                return bool(status.custom_status == "waiting for approval")

            await eventually(asked, LIMIT)
            await client.raise_event(approved, "Approval", "ana")
            status = await finished(host, client, approved)
            assert status.output == "approved by ana"
            assert status.custom_status == "approved"

            status = await finished(host, client, late)
            assert status.output == "escalated: no approval in time"
            assert status.custom_status == "escalated"

            status = await finished(host, client, eternal)
            assert status.output == {
                "round": 3,
                "greetings": ["Hello round 0!", "Hello round 1!", "Hello round 2!"],
            }
            assert status.custom_status == {"round": 3}
            # continue_as_new starts a fresh history: only the last execution's events remain
            assert [e["EventType"] for e in status.historyEvents].count("ExecutionStarted") == 1

    run(scenario())


def test_entities_retries_and_sub_orchestrations(azurite: Azurite, unique_name: UniqueName) -> None:
    import orchestration_sample_app

    async def scenario() -> None:
        async with orchestration_host(azurite, unique_name.table_name("Hub")) as (host, client):
            key = unique_name.token
            counting = await client.start_new("counting", None, key)
            ok = await client.start_new("retrying", None, {"key": f"{key}-ok", "failures": 2})
            bad = await client.start_new("retrying", None, {"key": f"{key}-bad", "failures": 9})
            family = await client.start_new("parent", f"{key}-parent")

            status = await finished(host, client, counting)
            assert status.output["after_call"] == 15  # the signal (5) was applied first
            assert status.output["state"] == 15
            assert "tally cannot explode" in status.output["failed"]
            tally = await client.read_entity_state(df.EntityId("tally", key))
            assert tally.entity_state == 15

            status = await finished(host, client, ok)
            assert status.output == {"result": f"{key}-ok succeeded on attempt 3"}
            status = await finished(host, client, bad)
            assert "attempt 3 of" in status.output["failed"]
            assert orchestration_sample_app.flaky_calls.calls[f"{key}-bad"] == 3  # max attempts
            assert [e["EventType"] for e in status.historyEvents].count("TaskFailed") == 3

            status = await finished(host, client, family)
            assert status.runtime_status == df.OrchestrationRuntimeStatus.Completed
            assert status.output["children"] == [
                ["Hello Tokyo!", "Hello Seattle!", "Hello London!"],
                1 + 4 + 9,
            ]
            assert "child failure" in status.output["failure"]
            child = await client.get_status(f"{key}-parent-fan")
            assert child.runtime_status == df.OrchestrationRuntimeStatus.Completed
            kinds = [e["EventType"] for e in status.historyEvents]
            assert kinds.count("SubOrchestrationInstanceFailed") == 2  # both attempts
            failures = await client.get_status_by(
                runtime_status=[df.OrchestrationRuntimeStatus.Failed],
                instance_id_prefix=f"{key}-parent:",
            )
            assert len(failures) == 2

            http = await client.start_new("calls_http")
            assert "not supported" in (await finished(host, client, http)).output

            failed = await client.start_new("failing", None, "plain failure")
            status = await finished(host, client, failed)
            assert status.runtime_status == df.OrchestrationRuntimeStatus.Failed
            assert "plain failure" in json.dumps(status.output)

    run(scenario())


def test_the_clients_instance_api(azurite: Azurite, unique_name: UniqueName) -> None:
    async def scenario() -> None:
        async with orchestration_host(azurite, unique_name.table_name("Hub")) as (host, client):
            instance = await client.start_new("waiting", "waiter")
            async with asyncio.timeout(LIMIT):
                await host.orchestrations.wait_for(instance, {"Running"})
            with pytest.raises(Exception, match="already exists"):
                await client.start_new("waiting", "waiter")
            with pytest.raises(Exception, match="doesn't exist"):
                await client.start_new("no_such_orchestrator")
            for n in range(3):
                await client.raise_event(instance, "Ping", {"n": n})

            async def seen() -> Any:
                return (await client.get_status(instance)).custom_status

            async def three() -> bool:
                return bool((await seen() or {}).get("seen") == 3)

            await eventually(three, LIMIT)
            assert (await seen())["last"] == {"n": 2}
            status = await client.get_status(instance, show_input=True)
            assert status.runtime_status == df.OrchestrationRuntimeStatus.Running
            running = await client.get_status_by(
                runtime_status=[df.OrchestrationRuntimeStatus.Running]
            )
            assert [s.instance_id for s in running] == ["waiter"]

            with pytest.raises(Exception, match="409"):
                await client.purge_instance_history(instance)  # refused while running
            await client.terminate(instance, "enough")
            status = await finished(host, client, instance)
            assert status.runtime_status == df.OrchestrationRuntimeStatus.Terminated
            assert status.output == "enough"
            with pytest.raises(Exception, match="gone"):
                await client.raise_event(instance, "Ping", 1)
            done = await client.get_status_by(
                runtime_status=[df.OrchestrationRuntimeStatus.Terminated]
            )
            assert [s.instance_id for s in done] == ["waiter"]

            # a finished instance's id can be used again
            assert await client.start_new("chaining", "waiter") == "waiter"
            assert (await finished(host, client, "waiter")).output[0] == "Hello Tokyo!"
            purged = await client.purge_instance_history("waiter")
            assert purged.instances_deleted == 1
            assert not await client.get_status("waiter")
            assert (await client.purge_instance_history("waiter")).instances_deleted == 0
            with pytest.raises(Exception, match="No instance"):
                await client.raise_event("never", "Ping", 1)

    run(scenario())


def test_the_history_json_the_orchestrator_receives(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    """The episode JSON follows the SDK's models; retry ids interleave as the SDK counts them."""
    seen: list[dict[str, Any]] = []

    async def scenario() -> None:
        async with orchestration_host(azurite, unique_name.table_name("Hub")) as (host, client):
            host.orchestrations.episode_observer = seen.append
            request = {"key": f"{unique_name.token}-json", "failures": 2}
            instance = await client.start_new("retrying", "json-1", request)
            assert (await finished(host, client, instance)).output["result"].endswith("3")

    run(scenario())
    first, last = seen[0], seen[-1]
    assert first["instanceId"] == "json-1"
    assert first["upperSchemaVersion"] == 0
    assert first["isReplaying"] is False
    assert [e["EventType"] for e in first["history"]] == [12, 0]  # OrchestratorStarted, Started
    started = first["history"][1]
    assert started["Name"] == "retrying"
    assert json.loads(started["Input"]) == json.loads(first["input"])
    assert last["isReplaying"] is True
    events = [
        (e["EventType"], e["EventId"], e.get("TaskScheduledId"), e.get("TimerId"))
        for e in last["history"]
        if e["EventType"] not in (12, 13)
    ]
    assert events == [
        (0, -1, None, None),  # ExecutionStarted
        (4, 0, None, None),  # TaskScheduled 0
        (6, -1, 0, None),  # TaskFailed 0
        (10, 1, None, None),  # TimerCreated 1 (the retry's timer)
        (11, -1, None, 1),  # TimerFired 1
        (4, 2, None, None),  # TaskScheduled 2 (attempt 2)
        (6, -1, 2, None),
        (10, 3, None, None),
        (11, -1, None, 3),
        (4, 4, None, None),  # attempt 3
        (5, -1, 4, None),  # TaskCompleted 4
    ]
    played = [e["IsPlayed"] for e in last["history"]]
    new_from = max(i for i, e in enumerate(last["history"]) if e["EventType"] == 12)
    assert all(played[:new_from])
    assert not any(played[new_from:])


@pytest.mark.parametrize("limit", [2, 8])
def test_activities_run_concurrently_within_max_concurrent_activity_functions(
    azurite: Azurite, unique_name: UniqueName, limit: int
) -> None:
    import orchestration_sample_app

    config = fast_config()
    config = replace(
        config, durable=replace(config.durable, max_concurrent_activity_functions=limit)
    )
    orchestration_sample_app.concurrency.peak = 0

    async def scenario() -> None:
        async with DevHost(
            orchestration_sample_app.app,
            connection_string=azurite.connection_string,
            hub=unique_name.table_name("Hub"),
            config=config,
        ) as host:
            client = df.DurableOrchestrationClient(host.client_binding())
            instance = await client.start_new("fan_slow", None, 16)
            assert (await finished(host, client, instance)).output == 16

    run(scenario())
    assert orchestration_sample_app.concurrency.peak == limit


def test_work_resumes_after_a_restart(azurite: Azurite, unique_name: UniqueName) -> None:
    """Stopped with timers pending: a new host fires them (once) and the instances complete."""
    hub = unique_name.table_name("Hub")

    async def scenario() -> None:
        async with orchestration_host(azurite, hub) as (host, client):
            ids = [
                await client.start_new("approval", None, {"approver": "x", "timeout": 1})
                for _ in range(5)
            ]

            async def all_waiting() -> bool:
                statuses = [await client.get_status(i) for i in ids]
                return all(s.custom_status is not None for s in statuses)

            await eventually(all_waiting, LIMIT)
        async with orchestration_host(azurite, hub) as (host, client):
            for instance in ids:
                status = await finished(host, client, instance)
                assert status.output == "escalated: no approval in time"
                kinds = [e["EventType"] for e in status.historyEvents]
                assert kinds.count("TimerCreated") == kinds.count("TimerFired") == 1

    run(scenario())


def test_an_outbox_left_by_a_crash_is_delivered_once(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    """A host died after an episode committed its outbox: one entity message was already stored
    for its entity, one not. The next host stores the missing one, not the other twice, before
    the entities run, and deletes the outbox: each message applies once."""
    from azure.data.tables.aio import TableClient

    from devhost.entity_store import EntityId, EntityStore
    from devhost.host import entities_table_name, orchestrations_table_name
    from devhost.orchestration_store import OrchestrationStore, _chunked_row, partition_of

    hub = unique_name.table_name("Hub")
    messages = [
        {
            "kind": "entity",
            "entity": f"@tally@{key}",
            "operation": "add",
            "input": "1",
            "id": f"sig-{key}",
            "seq": seq,
            "reply": None,
        }
        for key, seq in (("delivered", "00000000000000000001"), ("lost", "00000000000000000002"))
    ]

    async def scenario() -> None:
        store = OrchestrationStore(azurite.connection_string, orchestrations_table_name(hub))
        entities = EntityStore(azurite.connection_string, entities_table_name(hub))
        await store.open()
        await entities.open()
        signal = entities.new_signal("sig-delivered", "add", json.dumps("1"))
        signal.seq = "00000000000000000001"
        await entities.add_signal(EntityId.of("tally", "delivered"), signal)
        rows = _chunked_row(partition_of("ghost"), "out-00000000000000000003", json.dumps(messages))
        async with TableClient.from_connection_string(
            azurite.connection_string, orchestrations_table_name(hub)
        ) as table:
            await table.create_entity(rows[0])
        await store.close()
        await entities.close()
        async with orchestration_host(azurite, hub) as (host, client):
            async with asyncio.timeout(LIMIT):
                await host.wait_idle()
            for key in ("delivered", "lost"):
                state = await client.read_entity_state(df.EntityId("tally", key))
                assert state.entity_state == 1, key
            assert (await host.orchestration_store.pending_outboxes()) == {}

    run(scenario())
