"""The history archive in a real Azure Table (Azurite): written by the entity function's batches,
read through ``GET /api/agents/{id}/history``, purged by deregistration and by retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import pytest_asyncio
from azure.data.tables import TableClient as SyncTableClient
from azure.functions.timer import TimerRequest
from entity_driver import EntityDriver, entity_handle, event, make_app, operation
from harness import Aos, running_aos

from aos import GenericPurposeDrivenAgent, StorageError
from aos.adapters.azure.history import TableHistoryWriter
from aos.domain.history import HistoryRecord
from aos.domain.models import format_timestamp, utc_now
from aos.functions.app import create_app
from aos.functions.container import AppRuntime
from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = [pytest.mark.asyncio, pytest.mark.azurite]

SPEC = {"kind": "generic", "purpose": "Grow revenue through customer satisfaction"}


@pytest_asyncio.fixture
async def aos(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[Aos]:
    async with running_aos(azurite.connection_string, unique_name) as running:
        yield running


def table_writer(aos: Aos) -> TableHistoryWriter:
    def client() -> SyncTableClient:
        return SyncTableClient.from_connection_string(
            aos.connection_string, aos.settings.history_table
        )

    return TableHistoryWriter(client)


async def history(aos: Aos, agent_id: str, **params: str) -> list[dict[str, Any]]:
    """Every page of the agent's history, following ``nextLink`` as a client would."""
    items: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        response = await aos.call("GET", f"agents/{agent_id}/history", params=query)
        assert response.status == 200, response.text
        items += response.json["value"]
        next_link = response.json["nextLink"]
        if next_link is None:
            return items
        assert urlsplit(next_link).path == f"/api/agents/{agent_id}/history"
        query = dict(parse_qsl(urlsplit(next_link).query))


async def test_history_after_10000_events_is_complete_and_in_order(aos: Aos) -> None:
    driver = EntityDriver(entity_handle(make_app(history=table_writer(aos))), key="busy")
    driver.run(operation("configure", SPEC))
    for batch in range(100):  # the host's batches: 100 operations each
        driver.run(*[operation("handle_event", event(f"e{batch * 100 + i}")) for i in range(100)])
    items = await history(aos, "busy", limit="1000")
    assert [i["sequence"] for i in items] == list(range(10_000, 0, -1))
    assert [i["event_id"] for i in items] == [f"e{n}" for n in reversed(range(10_000))]
    assert all(i["kind"] == "event" and i["payload"]["data"] == {"n": 1} for i in items)
    assert len(driver.stored) <= 32 * 1024  # the entity itself stays bounded


async def test_a_re_executed_batch_adds_no_rows(aos: Aos) -> None:
    driver = EntityDriver(entity_handle(make_app(history=table_writer(aos))), key="a1")
    driver.run(operation("configure", SPEC))
    before = driver.stored
    ops = [operation("handle_event", event(f"e{i}")) for i in range(30)]
    ops.append(operation("decide", {"decision_id": "d1", "options": ["grow revenue", "nap"]}))
    driver.run(*ops)
    first = await history(aos, "a1")
    driver.state_text = before  # the host lost the commit and runs the batch again
    driver.run(*ops)
    again = await history(aos, "a1")
    assert [(i["sequence"], i["event_id"]) for i in again] == [
        (i["sequence"], i["event_id"]) for i in first
    ]
    assert len(again) == 31


async def test_paging_and_filters_return_every_matching_row_exactly_once(aos: Aos) -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="Keep customers happy")
    start = utc_now() - timedelta(hours=1)
    for i in range(120):
        received = format_timestamp(start + timedelta(seconds=i))
        kind = "invoice.paid" if i % 3 == 0 else "order.created"
        agent.receive({"event_id": f"e{i}", "type": kind, "data": {"i": i}}, received_at=received)
    journal: list[HistoryRecord] = agent.take_journal()
    table_writer(aos).write(journal)
    table_writer(aos).write(journal[:10])  # writing again is harmless
    newest_first = [f"e{i}" for i in reversed(range(120))]
    for limit in ("1", "7", "50", "120", "1000"):
        assert [i["event_id"] for i in await history(aos, "a1", limit=limit)] == newest_first
    paid = await history(aos, "a1", limit="9", type="invoice.paid")
    assert [i["event_id"] for i in paid] == [f"e{i}" for i in reversed(range(0, 120, 3))]
    both = await history(aos, "a1", limit="13", type="invoice.paid,order.created")
    assert len(both) == 120
    window = await history(
        aos,
        "a1",
        limit="4",
        since=format_timestamp(start + timedelta(seconds=10)),
        until=format_timestamp(start + timedelta(seconds=20)),
    )
    assert [i["event_id"] for i in window] == [f"e{i}" for i in reversed(range(10, 20))]
    also = await history(
        aos,
        "a1",
        **{
            "from": format_timestamp(start + timedelta(seconds=10)),
            "to": format_timestamp(start + timedelta(seconds=20)),
        },
    )
    assert also == window
    assert await history(aos, "a1", kind="decision") == []


async def test_history_through_the_app_includes_decisions_and_survives_deregistration(
    aos: Aos,
) -> None:
    await aos.register("cfo", purpose="Keep the company financially healthy")
    options = ["cut the marketing budget", "improve cash flow by invoicing faster"]
    for body in (
        {"event_id": "i1", "type": "invoice.paid", "data": {"amount": 5}},
        {"event_id": "d1", "type": "decision.requested", "data": {"options": options}},
    ):
        assert (await aos.call("POST", "agents/cfo/events", body)).status == 202
    await aos.deliver_queued()
    items = await history(aos, "cfo")
    assert [(i["kind"], i["event_id"], i["type"]) for i in items] == [
        ("event", "d1", "decision.requested"),
        ("decision", "d1", "decision"),
        ("event", "i1", "invoice.paid"),
    ]
    assert items[1]["payload"]["options"] == options  # the whole decision
    assert items[1]["payload"]["chosen"] in options
    assert items[2]["payload"]["correlation_id"]  # the request's, carried through the queue
    assert (await aos.call("DELETE", "agents/cfo")).status == 204
    assert len(await history(aos, "cfo")) == 3  # kept unless purged, readable after deregistering
    await aos.register("cfo", purpose="Keep the company financially healthy")
    assert (await aos.call("DELETE", "agents/cfo", params={"purge": "true"})).status == 202
    assert len(await history(aos, "cfo")) == 3  # until the purge has run
    await aos.run_maintenance()
    assert (await aos.call("GET", "agents/cfo/history")).status == 404


async def test_history_rejects_bad_queries_and_unknown_agents(aos: Aos) -> None:
    await aos.register("a1")
    for params, field in [
        ({"limit": "0"}, "query/limit"),
        ({"limit": "1001"}, "query/limit"),
        ({"kind": "goal"}, "query/kind"),
        ({"since": "yesterday"}, "query/since"),
        ({"type": "no spaces"}, "query/type"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "query"),
        ({"continuation": "garbage"}, None),
    ]:
        response = await aos.call("GET", "agents/a1/history", params=params)
        assert response.status == 400, (params, response.text)
        assert response.content_type == "application/problem+json"
        if field is not None:
            locs = {"/".join(map(str, e["loc"])) for e in response.json["errors"]}
            assert field in locs, (params, locs)
    empty = await aos.call("GET", "agents/a1/history", params={"code": "function-key"})
    assert (empty.status, empty.json) == (200, {"value": [], "nextLink": None})
    assert (await aos.call("GET", "agents/nobody/history")).status == 404


async def test_retention_deletes_only_old_records(aos: Aos) -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="Keep customers happy")
    now = utc_now()
    days = aos.settings.history_retention_days
    for i, age in enumerate([days + 30] * 150 + [days - 1, 0]):  # more than one transaction
        received = format_timestamp(now - timedelta(days=age))
        agent.receive({"event_id": f"e{i}", "type": "t"}, received_at=received)
    table_writer(aos).write(agent.take_journal())
    await aos.host.invoke("purge_history", timer=TimerRequest(past_due=False))
    assert [i["event_id"] for i in await history(aos, "a1")] == ["e151", "e150"]


def _delete_the_table_then_record_e2(aos: Aos, agent: GenericPurposeDrivenAgent) -> Any:
    with SyncTableClient.from_connection_string(
        aos.connection_string, aos.settings.history_table
    ) as client:
        client.delete_table()
    agent.receive({"event_id": "e2", "type": "t"})
    return agent.take_journal()


async def test_a_deleted_history_table_fails_one_write_then_is_created_again(aos: Aos) -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="Keep customers happy")
    writer = table_writer(aos)
    agent.receive({"event_id": "e1", "type": "t"})
    writer.write(agent.take_journal())
    records = _delete_the_table_then_record_e2(aos, agent)
    with pytest.raises(StorageError, match="missing"):
        writer.write(records)
    writer.write(records)  # what the batch's next execution does
    assert [i["event_id"] for i in await history(aos, "a1")] == ["e2"]


async def test_the_entity_functions_archive_creates_a_deleted_table_on_the_retry(aos: Aos) -> None:
    """``TableHistoryArchive.append``, which the entity function writes through: a write to a
    deleted table fails (the batch fails and runs again), and the next one creates it."""
    agent = GenericPurposeDrivenAgent("a1", purpose="Keep customers happy")
    archive = aos.runtime.storage().history
    agent.receive({"event_id": "e1", "type": "t"})
    await archive.append(records=agent.take_journal())
    records = _delete_the_table_then_record_e2(aos, agent)
    with pytest.raises(StorageError, match="missing"):
        await archive.append(records=records)
    await archive.append(records=records)  # what the batch's next execution does
    assert [i["event_id"] for i in await history(aos, "a1")] == ["e2"]


# ---- where the entity function's writes go (AppRuntime.complete_batch) -------------------------
def _entity_function(runtime: AppRuntime) -> Any:
    return entity_handle(create_app(runtime=runtime))


async def test_a_batch_hands_its_writes_to_the_running_event_loop(aos: Aos) -> None:
    """The storage is open on this (running) loop: a batch run on a worker thread, as the worker
    runs the entity function, archives through the loop's async client, not its own sockets."""
    runtime = AppRuntime(load_settings=lambda: aos.settings)
    runtime.storage()  # opened on this loop, as the app's async functions open it
    appended: list[int] = []
    real_append = runtime.storage().history.append

    async def append(*, records: Any) -> None:
        appended.append(len(records))
        await real_append(records=records)

    runtime.storage().history.append = append  # type: ignore[method-assign]
    driver = EntityDriver(_entity_function(runtime), key="looped")
    await asyncio.to_thread(driver.run, operation("configure", SPEC))
    ops = [operation("handle_event", event(f"e{i}")) for i in range(3)]
    await asyncio.to_thread(driver.run, *ops)
    assert appended == [3]
    assert [i["event_id"] for i in await history(aos, "looped")] == ["e2", "e1", "e0"]
    assert "history_writer" not in runtime.__dict__  # the synchronous writer was never made
    await runtime.aclose()


async def test_without_a_running_loop_a_batch_writes_through_the_synchronous_clients(
    aos: Aos,
) -> None:
    """No storage opened on a loop yet (an instance that has only run entity batches): the
    worker thread writes itself."""
    runtime = AppRuntime(load_settings=lambda: aos.settings)
    driver = EntityDriver(_entity_function(runtime), key="threaded")
    await asyncio.to_thread(driver.run, operation("configure", SPEC))
    await asyncio.to_thread(driver.run, operation("handle_event", event("e0")))
    assert [i["event_id"] for i in await history(aos, "threaded")] == ["e0"]
    assert runtime.history_writer is not None
    assert runtime._storage is None  # nothing was opened on a loop
