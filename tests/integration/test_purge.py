"""``DELETE /api/agents/{id}?purge=true`` against Azurite: it answers at once (202 with the purge's
status link), the rows go in the background (messages on the maintenance queue, each run bounded
by a time budget and continued by the next), progress shows at ``GET /api/agents/{id}/purge``, and
only rows recorded before the purge was asked for are deleted."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient
from harness import Aos, running_aos

from aos.adapters.azure.history import TableHistoryWriter
from aos.adapters.azure.maintenance import TablePurgeJobs
from aos.domain.history import HistoryRecord
from aos.domain.models import format_timestamp, utc_now
from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = [pytest.mark.asyncio, pytest.mark.azurite]


@pytest_asyncio.fixture
async def aos(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[Aos]:
    async with running_aos(azurite.connection_string, unique_name) as running:
        yield running


def archive(aos: Aos, agent_id: str, count: int, *, generation: str, age: timedelta) -> None:
    from azure.data.tables import TableClient as SyncTableClient

    def client() -> SyncTableClient:
        return SyncTableClient.from_connection_string(
            aos.connection_string, aos.settings.history_table
        )

    recorded = format_timestamp(utc_now() - age)
    TableHistoryWriter(client).write(
        [
            HistoryRecord(
                agent_id=agent_id,
                generation=generation,
                sequence=i + 1,
                kind="event",
                event_id=f"e{i}",
                type="t",
                recorded_at=recorded,
                payload={"n": i},
            )
            for i in range(count)
        ]
    )


async def keys(aos: Aos, agent_id: str) -> list[str]:
    async with TableClient.from_connection_string(
        aos.connection_string, aos.settings.history_table
    ) as table:
        rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": agent_id})
        return [str(row["RowKey"]) async for row in rows]


async def test_purge_answers_at_once_and_runs_in_the_background(aos: Aos) -> None:
    await aos.register("cfo")
    archive(aos, "cfo", 250, generation="2025-01-01T00:00:00Z", age=timedelta(minutes=5))
    assert (await aos.call("GET", "agents/cfo/purge")).status == 404
    response = await aos.call("DELETE", "agents/cfo", params={"purge": "true"})
    assert response.status == 202, response.text
    assert response.headers["location"] == "http://localhost:7071/api/agents/cfo/purge"
    body = response.json
    assert (body["status"], body["history_deleted"], body["finished_at"]) == ("purging", 0, None)
    assert body["links"]["self"] == response.headers["location"]
    assert (await aos.call("GET", "agents/cfo")).status == 404  # deregistered at once
    page = await aos.call("GET", "agents/cfo/history", params={"limit": "5"})
    assert len(page.json["value"]) == 5  # readable until purged
    assert (await aos.call("GET", "agents/cfo/purge")).json["status"] == "purging"

    assert await aos.run_maintenance() == 1
    status = await aos.call("GET", "agents/cfo/purge")
    assert status.status == 200
    assert status.json["status"] == "done"
    assert status.json["history_deleted"] == 250
    assert status.json["finished_at"] >= status.json["requested_at"]
    assert (await aos.call("GET", "agents/cfo/history")).status == 404
    assert await keys(aos, "cfo") == []


async def test_a_purge_stopped_by_its_budget_continues_and_spares_a_new_registration(
    aos: Aos,
) -> None:
    archive(aos, "a1", 430, generation="2025-01-01T00:00:00Z", age=timedelta(minutes=5))
    async with TableClient.from_connection_string(
        aos.connection_string, aos.settings.history_table
    ) as table:
        for i in range(120):
            await table.upsert_entity(
                {
                    "PartitionKey": "a1",
                    "RowKey": f"receipt|r{i}",
                    "claimed_at": format_timestamp(utc_now() - timedelta(minutes=5)),
                }
            )
    ticks = itertools.count()  # one "second" per look at the clock: no real time involved
    purges = TablePurgeJobs(
        TableClient.from_connection_string(aos.connection_string, aos.settings.history_table),
        QueueClient.from_connection_string(aos.connection_string, aos.settings.maintenance_queue),
        clock=lambda: float(next(ticks)),
    )
    try:
        started = await purges.start(agent_id="a1")
        # the agent is registered again while the purge runs: its new rows must stay
        archive(aos, "a1", 3, generation="2026-02-01T00:00:00Z", age=timedelta(minutes=-1))
        runs: list[Any] = []
        while not (runs and runs[-1].done):
            runs.append(await purges.run(agent_id="a1", budget_seconds=3))
            assert len(runs) < 100
        progress = [r.history_deleted + r.receipts_deleted for r in runs]
        assert len(runs) > 2  # the budget stopped runs part-way
        assert progress == sorted(progress)  # and each went further
        assert (runs[-1].history_deleted, runs[-1].receipts_deleted) == (430, 120)
        assert runs[-1].requested_at == started.requested_at
        assert len(await keys(aos, "a1")) == 3  # the new generation's records only
        assert (await purges.status(agent_id="a1")) == runs[-1]
        again = await purges.run(agent_id="a1", budget_seconds=3)  # a late duplicate message
        assert again == runs[-1]
    finally:
        await purges.close()


async def test_a_deregistered_agents_history_can_be_purged_later(aos: Aos) -> None:
    await aos.register("old")
    archive(aos, "old", 3, generation="2025-01-01T00:00:00Z", age=timedelta(minutes=5))
    assert (await aos.call("DELETE", "agents/old")).status == 204
    assert len((await aos.call("GET", "agents/old/history")).json["value"]) == 3
    response = await aos.call("DELETE", "agents/old", params={"purge": "true"})
    assert response.status == 202
    await aos.run_maintenance()
    assert (await aos.call("GET", "agents/old/purge")).json["history_deleted"] == 3
    assert (await aos.call("GET", "agents/old/history")).status == 404
    missing = await aos.call("DELETE", "agents/nobody", params={"purge": "true"})
    assert missing.status == 404
    unknown = await aos.call("GET", "agents/nobody/purge")
    assert unknown.status == 404
    assert unknown.content_type == "application/problem+json"


async def test_two_runs_of_one_purge_count_every_row_once(aos: Aos) -> None:
    """A message delivered twice, or a DELETE repeated while the purge runs: the runs race on
    the job row (ETags), one gives way, and the counts still add up to the rows deleted."""
    archive(aos, "a1", 900, generation="2025-01-01T00:00:00Z", age=timedelta(minutes=5))

    def purge_jobs() -> TablePurgeJobs:
        return TablePurgeJobs(
            TableClient.from_connection_string(aos.connection_string, aos.settings.history_table),
            QueueClient.from_connection_string(
                aos.connection_string, aos.settings.maintenance_queue
            ),
        )

    first, second = purge_jobs(), purge_jobs()
    try:
        await first.start(agent_id="a1")
        await asyncio.gather(
            first.run(agent_id="a1", budget_seconds=600),
            second.run(agent_id="a1", budget_seconds=600),
            second.start(agent_id="a1"),  # a repeated DELETE meanwhile
        )
        final = await first.run(agent_id="a1", budget_seconds=600)  # the queued message
        assert final is not None
        assert final.done
        assert final.history_deleted == 900
        assert await keys(aos, "a1") == []
    finally:
        await first.close()
        await second.close()
