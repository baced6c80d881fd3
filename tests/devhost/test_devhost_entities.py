"""The durable side: signals persisted before 202, batches in order, state persisted per batch."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import azure.durable_functions as df
import httpx
import pytest
from azure.data.tables import TableClient
from helpers import fast_config, run, sample_host

from devhost.azurite import Azurite
from devhost.entity_store import (
    ENTITIES_PARTITION,
    EntityId,
    EntityStore,
    signal_row_key,
    state_row_names,
)
from devhost.host import entities_table_name
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.azurite


async def _read(host: Any, key: str) -> Any:
    client = df.DurableOrchestrationClient(host.client_binding())
    return await client.read_entity_state(df.EntityId("counter", key))


async def _opened(azurite: Azurite, table: str) -> EntityStore:
    """The store a host would use, opened (the table created), for writing rows as it would."""
    store = EntityStore(azurite.connection_string, table)
    await store.open()
    return store


def _rows_of(azurite: Azurite, table: str, entity: EntityId) -> list[str]:
    """The keys of the entity's rows (state rows, then signal rows) in the shared partition."""
    with TableClient.from_connection_string(azurite.connection_string, table) as t:
        rows = t.query_entities(f"PartitionKey eq '{ENTITIES_PARTITION}'", select=["RowKey"])
        mine = (f"state|{entity.partition_key}|", f"sig|{entity.partition_key}|")
        keys = [str(row["RowKey"]) for row in rows]
    return [key for prefix in mine for key in sorted(keys) if key.startswith(prefix)]


def test_signals_apply_in_order_and_persist_across_hosts(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    hub = unique_name.table_name("Hub")

    async def scenario() -> None:
        async with sample_host(azurite.connection_string, hub) as host:
            client = df.DurableOrchestrationClient(host.client_binding())
            for amount in range(1, 21):
                await client.signal_entity(df.EntityId("counter", "k1"), "add", amount)
            await host.wait_idle()
            state = await _read(host, "k1")
            assert state.entity_exists
            assert state.entity_state["seen"] == list(range(1, 21))
            assert state.entity_state["total"] == 210
        async with sample_host(azurite.connection_string, hub) as again:
            assert (await _read(again, "k1")).entity_state["total"] == 210
            assert not (await _read(again, "never")).entity_exists

    run(scenario())


def test_pending_signals_resume_in_one_batch_with_the_hosts_json(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    """Signals stored by a previous run are resumed at start-up, batched up to the limit."""
    hub = unique_name.table_name("Hub")
    seen: list[dict[str, Any]] = []

    async def scenario() -> None:
        store = EntityStore(azurite.connection_string, entities_table_name(hub))
        await store.open()
        entity = EntityId.of("counter", "k2")
        for amount in (5, 6, 7, 8, 9):
            await store.add_signal(
                entity, store.new_signal(f"id{amount}", "add", json.dumps(json.dumps(amount)))
            )
        await store.close()
        host = sample_host(azurite.connection_string, hub, config=fast_config(batch_size=2))
        host.runtime.batch_observer = lambda text: seen.append(json.loads(text))
        async with host:
            await host.wait_idle()
            assert (await _read(host, "k2")).entity_state["seen"] == [5, 6, 7, 8, 9]

    run(scenario())
    assert [len(b["batch"]) for b in seen] == [2, 2, 1]
    first = seen[0]
    assert first["self"] == {"name": "counter", "key": "k2"}
    assert first["state"] is None
    assert first["exists"] is False
    assert first["batch"][0] == {"name": "add", "input": '"5"', "signal": True, "id": "id5"}
    assert seen[1]["exists"] is True
    assert json.loads(seen[1]["state"])["seen"] == [5, 6]


def test_a_commit_stores_the_state_and_deletes_its_signals_together(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    """A batch's state and the deletes of the signals it applied are one transaction: a host that
    died right after it runs only the signals not applied, and nothing is left behind."""
    hub = unique_name.table_name("Hub")
    table = entities_table_name(hub)
    entity = EntityId.of("counter", "k4")

    async def scenario() -> None:
        store = await _opened(azurite, table)
        signals = [
            store.new_signal(f"id{amount}", "add", json.dumps(json.dumps(amount)))
            for amount in (1, 2, 3)
        ]
        for signal in signals:
            await store.add_signal(entity, signal)
        state = json.dumps({"total": 3, "ops": 2, "seen": [1, 2]})
        previous = await store.load_state(entity)
        await store.commit(entity, previous, True, state, signals[:2])
        assert _rows_of(azurite, table, entity) == [
            *state_row_names(entity, 1),
            signal_row_key(entity, signals[2].seq),
        ]
        await store.close()  # ... and the host dies
        async with sample_host(azurite.connection_string, hub) as host:
            await host.wait_idle()
            assert (await _read(host, "k4")).entity_state == {
                "total": 6,
                "ops": 3,
                "seen": [1, 2, 3],
            }

    run(scenario())
    assert _rows_of(azurite, table, entity) == state_row_names(entity, 1)


def test_an_entity_that_deleted_itself_leaves_nothing_to_run_again(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    """Deleting itself deletes the state rows and the signals applied in one transaction: a host
    started after it finds no row of the entity and runs no batch."""
    hub = unique_name.table_name("Hub")
    table = entities_table_name(hub)
    entity = EntityId.of("counter", "gone2")

    async def scenario() -> None:
        store = await _opened(azurite, table)
        first = store.new_signal("id1", "add", json.dumps(json.dumps(1)))
        await store.add_signal(entity, first)
        state = json.dumps({"total": 1, "ops": 1, "seen": [1]})
        stored = await store.commit(entity, await store.load_state(entity), True, state, [first])
        delete = store.new_signal("id2", "delete", None)
        await store.add_signal(entity, delete)
        await store.commit(entity, stored, False, None, [delete])
        await store.close()
        async with sample_host(azurite.connection_string, hub) as host:
            await host.wait_idle()
            assert host.runtime.batches_run == 0  # nothing ran again
            assert not (await _read(host, "gone2")).entity_exists

    run(scenario())
    assert _rows_of(azurite, table, entity) == []


def test_signal_rows_of_the_older_layout_are_moved_and_each_applies_once(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    """A local Azurite kept from before every entity shared one partition: a signal row in the
    entity's own partition that its head row lists as applied is deleted at start-up, the other is
    moved and applied; the state moves with the next commit."""
    hub = unique_name.table_name("Hub")
    table = entities_table_name(hub)
    entity = EntityId.of("counter", "oldsig")
    tag = hashlib.sha256(entity.partition_key.encode()).hexdigest()[:16]

    async def scenario() -> None:
        with TableClient.from_connection_string(azurite.connection_string, table) as t:
            t.create_table()
            t.create_entity(
                {
                    "PartitionKey": entity.partition_key,
                    "RowKey": f"state~{tag}",
                    "exists": True,
                    "rows": 1,
                    "applied": "00000000000000000003",
                    "s000": json.dumps({"total": 3, "ops": 1, "seen": [3]}),
                }
            )
            for n in (3, 4):
                t.create_entity(
                    {
                        "PartitionKey": entity.partition_key,
                        "RowKey": f"sig-{n:020d}",
                        "op": "add",
                        "id": f"id{n}",
                        "has_input": True,
                        "i000": json.dumps(json.dumps(n)),
                    }
                )
        async with sample_host(azurite.connection_string, hub) as host:
            await host.wait_idle()
            assert (await _read(host, "oldsig")).entity_state["seen"] == [3, 4]

    run(scenario())
    with TableClient.from_connection_string(azurite.connection_string, table) as t:
        assert list(t.query_entities(f"PartitionKey eq '{entity.partition_key}'")) == []
    assert _rows_of(azurite, table, entity) == state_row_names(entity, 1)


def test_state_stored_by_the_older_layout_is_read_and_moved_by_the_next_commit(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    """A local Azurite kept from before every entity shared one partition (here the oldest layout,
    ``state``, ``state-001`` in the entity's own): the state is read, and the entity's next commit
    stores it in the current layout and deletes the old rows."""
    hub = unique_name.table_name("Hub")
    table = entities_table_name(hub)
    small, large = EntityId.of("counter", "old1"), EntityId.of("counter", "old2")
    big_blob = "b" * 200_000  # two rows of 12 chunks in either layout

    def old_rows(entity: EntityId, state: dict[str, Any]) -> list[dict[str, Any]]:
        text = json.dumps(state)
        chunks = [text[i : i + 16_000] for i in range(0, len(text), 16_000)]
        groups = [chunks[i : i + 12] for i in range(0, len(chunks), 12)]
        rows = []
        for n, group in enumerate(groups):
            row: dict[str, Any] = {
                "PartitionKey": entity.partition_key,
                "RowKey": "state" if n == 0 else f"state-{n:03d}",
            }
            if n == 0:
                row |= {"exists": True, "rows": len(groups), "applied": ""}
            row |= {f"s{i:03d}": chunk for i, chunk in enumerate(group)}
            rows.append(row)
        return rows

    async def scenario() -> None:
        store = EntityStore(azurite.connection_string, table)
        await store.open()
        await store.close()
        with TableClient.from_connection_string(azurite.connection_string, table) as t:
            for row in old_rows(small, {"total": 4, "ops": 1, "seen": [4]}):
                t.create_entity(row)
            for row in old_rows(large, {"total": 1, "ops": 1, "seen": [1], "blob": big_blob}):
                t.create_entity(row)
        async with sample_host(azurite.connection_string, hub) as host:
            assert (await _read(host, "old1")).entity_state["total"] == 4
            assert (await _read(host, "old2")).entity_state["blob"] == big_blob
            client = df.DurableOrchestrationClient(host.client_binding())
            await client.signal_entity(df.EntityId("counter", "old1"), "add", 5)
            await client.signal_entity(df.EntityId("counter", "old2"), "add", 2)
            await host.wait_idle()
        async with sample_host(azurite.connection_string, hub) as again:
            assert (await _read(again, "old1")).entity_state["seen"] == [4, 5]
            moved = (await _read(again, "old2")).entity_state
            assert (moved["total"], moved["seen"]) == (3, [1, 2])  # `add` keeps no blob

    run(scenario())
    with TableClient.from_connection_string(azurite.connection_string, table) as t:
        for entity in (small, large):  # both old rows of old2 gone
            assert list(t.query_entities(f"PartitionKey eq '{entity.partition_key}'")) == []
    for entity in (small, large):
        assert _rows_of(azurite, table, entity) == state_row_names(entity, 1)


def test_client_input_arrives_encoded_twice(azurite: Azurite, unique_name: UniqueName) -> None:
    hub = unique_name.table_name("Hub")
    seen: list[str] = []

    async def scenario() -> None:
        host = sample_host(azurite.connection_string, hub)
        host.runtime.batch_observer = seen.append
        async with host:
            client = df.DurableOrchestrationClient(host.client_binding())
            await client.signal_entity(df.EntityId("counter", "k3"), "add", 41)
            await host.wait_idle()

    run(scenario())
    assert json.loads(seen[0])["batch"][0]["input"] == json.dumps(json.dumps(41))


def test_destruct_deletes_the_entity_and_its_rows(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    hub = unique_name.table_name("Hub")

    async def scenario() -> None:
        async with sample_host(azurite.connection_string, hub) as host:
            client = df.DurableOrchestrationClient(host.client_binding())
            await client.signal_entity(df.EntityId("counter", "gone"), "add", 1)
            await host.wait_idle()
            assert (await _read(host, "gone")).entity_exists
            await client.signal_entity(df.EntityId("counter", "gone"), "delete")
            await host.wait_idle()
            assert not (await _read(host, "gone")).entity_exists

    run(scenario())
    assert _rows_of(azurite, entities_table_name(hub), EntityId.of("counter", "gone")) == []


def test_failing_operation_keeps_state_and_later_operations_run(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    hub = unique_name.table_name("Hub")

    async def scenario() -> None:
        async with sample_host(azurite.connection_string, hub) as host:
            client = df.DurableOrchestrationClient(host.client_binding())
            entity = df.EntityId("counter", "k4")
            await client.signal_entity(entity, "add", 2)
            await client.signal_entity(entity, "explode")
            await client.signal_entity(entity, "add", 3)
            await host.wait_idle()
            assert (await _read(host, "k4")).entity_state["seen"] == [2, 3]

    run(scenario())


def test_large_state_is_split_not_truncated(azurite: Azurite, unique_name: UniqueName) -> None:
    hub = unique_name.table_name("Hub")
    size = 300_000  # far beyond Table's 64 KB property limit

    async def scenario() -> None:
        async with sample_host(azurite.connection_string, hub) as host:
            client = df.DurableOrchestrationClient(host.client_binding())
            await client.signal_entity(df.EntityId("counter", "big"), "big", size)
            await host.wait_idle()
        async with sample_host(azurite.connection_string, hub) as again:
            state = (await _read(again, "big")).entity_state
            assert len(state["blob"]) == size
            # Shrinking again removes the extra rows.
            client = df.DurableOrchestrationClient(again.client_binding())
            await client.signal_entity(df.EntityId("counter", "big"), "big", 10)
            await again.wait_idle()
        again2 = sample_host(azurite.connection_string, hub)
        async with again2:
            assert len((await _read(again2, "big")).entity_state["blob"]) == 10

    run(scenario())
    big = EntityId.of("counter", "big")
    assert _rows_of(azurite, entities_table_name(hub), big) == state_row_names(big, 1)


def test_oversized_state_is_refused_loudly_and_old_state_kept(
    azurite: Azurite, unique_name: UniqueName, caplog: pytest.LogCaptureFixture
) -> None:
    hub = unique_name.table_name("Hub")

    async def scenario() -> None:
        async with sample_host(azurite.connection_string, hub) as host:
            client = df.DurableOrchestrationClient(host.client_binding())
            await client.signal_entity(df.EntityId("counter", "huge"), "add", 1)
            await client.signal_entity(df.EntityId("counter", "huge"), "big", 2_000_000)
            await host.wait_idle()
            state = (await _read(host, "huge")).entity_state
            assert state["total"] == 1
            assert "blob" not in state

    run(scenario())
    assert "too large" in caplog.text


def test_http_api_answers_like_the_durable_extension(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    hub = unique_name.table_name("Hub")

    async def scenario() -> None:
        async with sample_host(azurite.connection_string, hub) as host:
            rpc = json.loads(host.client_binding())["rpcBaseUrl"]
            async with httpx.AsyncClient(base_url=rpc) as http:
                missing_op = await http.post("entities/counter/x")
                assert missing_op.status_code == 400
                assert missing_op.headers["content-type"].startswith("application/problem+json")
                unknown = await http.post("entities/nosuch/x?op=add")
                assert unknown.status_code == 400
                assert (await http.get("entities/counter/none")).status_code == 404
                ok = await http.post("entities/counter/x?op=add", content=json.dumps("4"))
                assert ok.status_code == 202
                await host.wait_idle()
                read = await http.get("entities/counter/x")
                assert read.status_code == 200
                assert read.json()["total"] == 4
                unknown_orchestrator = await http.post("orchestrators/hello")
                assert unknown_orchestrator.status_code == 400
                assert "hello" in unknown_orchestrator.json()["ExceptionMessage"]
                assert (await http.get("instances/abc")).status_code == 404
                assert (await http.get("instances")).json() == []
                assert (await http.post("instances/abc/raiseEvent/e")).status_code == 404
                assert (await http.delete("instances/abc")).status_code == 404
                for method, path in [
                    ("POST", "instances/abc/suspend"),
                    ("POST", "instances/abc/rewind"),
                    ("GET", "entities"),
                ]:
                    response = await http.request(method, path)
                    assert response.status_code == 501
                    assert "not support" in response.json()["detail"]

    run(scenario())


def test_a_failed_invocation_is_run_again_then_given_up(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    """An invocation that raises commits nothing; the batch runs again (its signals stay stored)
    and after BATCH_ATTEMPTS failures its signals are dropped so the entity is not wedged."""
    import devhost_sample_app

    from devhost.entity_runtime import BATCH_ATTEMPTS

    async def scenario() -> None:
        async with sample_host(azurite.connection_string, unique_name.table_name("Hub")) as host:
            client = df.DurableOrchestrationClient(host.client_binding())
            recovers, never = "fails-2", f"fails-{BATCH_ATTEMPTS + 5}"
            for key in (recovers, never):
                await client.signal_entity(df.EntityId("flaky", key), "add", 5)
            await host.wait_idle()
            state = await client.read_entity_state(df.EntityId("flaky", recovers))
            assert state.entity_state["total"] == 5
            gone = await client.read_entity_state(df.EntityId("flaky", never))
            assert not gone.entity_exists
            attempts = devhost_sample_app.flaky_invocations.attempts
            assert attempts == {recovers: 3, never: BATCH_ATTEMPTS}

    run(scenario())
