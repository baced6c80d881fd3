"""The history archive's records: what the entity's batches produce, their keys, and paging.

The entity runs through the SDK's own handler (``entity_driver``) with an in-memory archive as the
batch writer; the Azure Table archive is tested against Azurite in ``tests/integration``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from entity_driver import EntityDriver, entity_handle, event, make_app, operation

from aos import ContextMCPServer, GenericPurposeDrivenAgent
from aos.api.schemas import HistoryItem
from aos.domain.history import HistoryQuery, HistoryRecord, InMemoryHistoryArchive, history_row_key
from aos.domain.models import format_timestamp, utc_now

SPEC = {"kind": "generic", "purpose": "Grow revenue through customer satisfaction"}


@pytest.fixture
def archive() -> InMemoryHistoryArchive:
    return InMemoryHistoryArchive()


@pytest.fixture
def driver(archive: InMemoryHistoryArchive) -> EntityDriver:
    return EntityDriver(entity_handle(make_app(history=archive)), key="a1")


def records(archive: InMemoryHistoryArchive, **query: Any) -> list[HistoryRecord]:
    page = asyncio.run(archive.page(agent_id="a1", query=HistoryQuery(limit=10_000, **query)))
    return page.records


def test_every_applied_event_and_decision_is_archived_newest_first(
    driver: EntityDriver, archive: InMemoryHistoryArchive
) -> None:
    driver.run(operation("configure", SPEC))
    options = ["repaint the office", "improve customer satisfaction to grow revenue"]
    driver.run(
        operation("handle_event", event("e1", big="x" * 5_000)),  # beyond the window's preview
        operation("handle_event", event("e1")),  # a duplicate: not archived again
        operation("handle_event", event("e2", "decision.requested", options=options)),
        operation("decide", {"decision_id": "d1", "options": options}),
        operation("update_state", {"key": "k", "value": 1}),  # not history
    )
    found = records(archive)
    assert [(r.sequence, r.kind, r.event_id) for r in found] == [
        (4, "decision", "d1"),
        (3, "event", "e2"),
        (2, "decision", "e2"),  # decided while handling e2, before e2 itself was recorded
        (1, "event", "e1"),
    ]
    oldest = HistoryItem.from_record(found[-1]).model_dump(mode="json")
    assert oldest["payload"]["data"] == {"big": "x" * 5_000}  # the whole event, not the preview
    assert oldest["type"] == "order.created"
    assert HistoryItem.from_record(found[0]).payload["chosen_index"] == 1
    state = driver.run(operation("get")).result(0)
    assert state["counters"] == {
        "events_handled": 2,
        "duplicates_ignored": 1,
        "decisions_made": 2,
        "events_failed": 0,
    }


def test_a_failed_operation_archives_nothing(
    driver: EntityDriver, archive: InMemoryHistoryArchive
) -> None:
    driver.run(operation("configure", SPEC))
    batch = driver.run(
        operation("handle_event", {"event_id": "bad", "type": "no spaces allowed"}),
        operation("decide", {"decision_id": "d1", "options": []}),
        operation("handle_event", event("ok")),
    )
    assert batch.results[0]["isError"]
    assert batch.results[1]["isError"]
    assert [(r.sequence, r.event_id) for r in records(archive)] == [(1, "ok")]


def test_a_re_executed_batch_rewrites_the_same_rows(
    driver: EntityDriver, archive: InMemoryHistoryArchive
) -> None:
    driver.run(operation("configure", SPEC))
    before = driver.stored
    ops = [operation("handle_event", event(f"e{i}")) for i in range(50)]
    driver.run(*ops)
    keys = [r.row_key for r in records(archive)]
    # The host crashed before committing: it runs the same batch again from the same state.
    driver.state_text = before
    driver.run(*ops)
    assert [r.row_key for r in records(archive)] == keys
    assert archive.count("a1") == 50


def test_a_registration_after_deregistering_starts_a_new_generation(
    driver: EntityDriver, archive: InMemoryHistoryArchive
) -> None:
    driver.run(operation("configure", SPEC), operation("handle_event", event("old")))
    driver.run(operation("deregister"))
    driver.run(operation("configure", SPEC), operation("handle_event", event("new")))
    found = records(archive)
    assert [(r.sequence, r.event_id) for r in found] == [(1, "new"), (1, "old")]
    assert found[0].generation > found[1].generation


def test_row_keys_sort_newest_first_across_sequences_and_generations() -> None:
    early, late = "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000001Z"
    keys = [history_row_key(late, 10), history_row_key(late, 9), history_row_key(early, 1_000)]
    assert keys == sorted(keys)
    assert history_row_key(early, 2) < history_row_key(early, 1)


def test_paging_returns_each_record_once_and_filters(archive: InMemoryHistoryArchive) -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="Keep customers happy")
    start = utc_now()
    for i in range(25):
        received = format_timestamp(start + timedelta(seconds=i))
        agent.receive(
            {"event_id": f"e{i}", "type": "even" if i % 2 == 0 else "odd"}, received_at=received
        )
    archive.write(agent.take_journal())
    for limit in (1, 4, 25, 26):
        seen: list[str] = []
        continuation = None
        while True:
            page = asyncio.run(
                archive.page(
                    agent_id="a1", query=HistoryQuery(limit=limit, continuation=continuation)
                )
            )
            seen += [r.event_id for r in page.records]
            if page.continuation is None:
                break
            continuation = page.continuation
        assert seen == [f"e{i}" for i in reversed(range(25))], limit
    odd = records(archive, types=("odd",))
    assert [r.event_id for r in odd] == [f"e{i}" for i in reversed(range(1, 25, 2))]
    window = records(
        archive,
        since=format_timestamp(start + timedelta(seconds=5)),
        until=format_timestamp(start + timedelta(seconds=8)),
    )
    assert [r.event_id for r in window] == ["e7", "e6", "e5"]
    assert records(archive, kind="decision") == []


def test_the_seed_api_saves_state_and_archives_through_a_context_mcp_server() -> None:
    async def scenario() -> None:
        agent = GenericPurposeDrivenAgent("ceo", purpose="Grow the company")
        await agent.initialize()
        server = agent.context_server
        assert isinstance(server, ContextMCPServer)  # the seed: initialize creates it
        await agent.handle_event({"event_id": "e1", "type": "market.update"})
        await agent.make_purpose_driven_decision({"options": ["grow the company", "nap"]})
        history = await server.history(agent_id="ceo")
        assert [r.kind for r in history.records] == ["decision", "event"]
        stored = await server.load(agent_id="ceo")
        assert stored is not None
        assert stored["counters"]["events_handled"] == 1
        assert agent.journal == []  # archived records are not kept twice

    asyncio.run(scenario())


def test_retention_purges_only_old_records(archive: InMemoryHistoryArchive) -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="Keep customers happy")
    now = utc_now()
    for i, age in enumerate((400, 300, 10, 0)):
        received = format_timestamp(now - timedelta(days=age))
        agent.receive({"event_id": f"e{i}", "type": "t"}, received_at=received)
    archive.write(agent.take_journal())
    cutoff = now - timedelta(days=365)
    assert asyncio.run(archive.purge(older_than=cutoff, limit=100)) == 1
    assert [r.event_id for r in records(archive)] == ["e3", "e2", "e1"]
