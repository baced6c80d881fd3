"""Retention by the keys, against a real Azure Table (Azurite): only expired rows go, a run stopped
by its time budget is continued by the next one from the cursor row, and nothing unexpired is
touched (history of every generation, delivery receipts, other agents, the maintenance rows)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from azure.data.tables import TableClient as SyncTableClient
from azure.data.tables.aio import TableClient
from azure.functions.timer import TimerRequest
from harness import Aos, running_aos

from aos.adapters.azure.history import TableHistoryWriter
from aos.adapters.azure.maintenance import MAINTENANCE_PARTITION, TableRetention
from aos.domain.history import HistoryRecord
from aos.domain.models import format_timestamp, utc_now
from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = [pytest.mark.asyncio, pytest.mark.azurite]

DAYS = 30


@pytest_asyncio.fixture
async def aos(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[Aos]:
    async with running_aos(azurite.connection_string, unique_name) as running:
        yield running


def sync_table(aos: Aos) -> SyncTableClient:
    return SyncTableClient.from_connection_string(aos.connection_string, aos.settings.history_table)


def write_history(aos: Aos, agent_id: str, ages_days: Sequence[float], *, created: str) -> None:
    """Records 1, 2, ... of the agent generation created at ``created``, ``ages_days`` old."""
    now = utc_now()
    records = [
        HistoryRecord(
            agent_id=agent_id,
            generation=created,
            sequence=i + 1,
            kind="event",
            event_id=f"{created[:4]}-e{i}",
            type="t",
            recorded_at=format_timestamp(now - timedelta(days=age)),
            payload={"n": i},
        )
        for i, age in enumerate(ages_days)
    ]
    TableHistoryWriter(lambda: sync_table(aos)).write(records)


def write_receipts(aos: Aos, agent_id: str, ages_days: Sequence[float]) -> None:
    now = utc_now()
    with sync_table(aos) as client:
        for i, age in enumerate(ages_days):
            client.upsert_entity(
                {
                    "PartitionKey": agent_id,
                    "RowKey": f"receipt|r{i:04d}",
                    "message_id": "m",
                    "status": "signalled",
                    "claimed_at": format_timestamp(now - timedelta(days=age)),
                }
            )


def rows(aos: Aos) -> dict[tuple[str, str], dict[str, Any]]:
    with sync_table(aos) as client:
        return {(r["PartitionKey"], r["RowKey"]): dict(r) for r in client.list_entities()}


def expired(row: dict[str, Any], cutoff: str) -> bool:
    if str(row["RowKey"]).startswith("history|"):
        return str(row["recorded_at"]) < cutoff
    if str(row["RowKey"]).startswith("receipt|"):
        return str(row["claimed_at"]) < cutoff
    return False


def populate(aos: Aos) -> None:
    old, new = DAYS + 10, DAYS - 1
    # two generations of one agent: the older one entirely expired, the newer one half
    write_history(aos, "a1", [old] * 130, created="2024-01-01T00:00:00.000000Z")
    write_history(aos, "a1", [old] * 250 + [new] * 40 + [0] * 3, created="2025-06-01T00:00:00Z")
    write_history(aos, "b2", [new, 0], created="2025-01-01T00:00:00Z")  # nothing expired
    write_history(aos, "c3", [old] * 7, created="2025-01-01T00:00:00Z")  # everything expired
    write_receipts(aos, "a1", [old, new] * 120)
    write_receipts(aos, "d4", [old] * 3)  # receipts only


def populated(
    aos: Aos,
) -> tuple[datetime, dict[tuple[str, str], dict[str, Any]], set[tuple[str, str]]]:
    """``populate``, then the cutoff, every row, and the keys of the rows retention must keep."""
    populate(aos)
    cutoff = utc_now() - timedelta(days=DAYS)
    before = rows(aos)
    return (
        cutoff,
        before,
        {k for k, r in before.items() if not expired(r, format_timestamp(cutoff))},
    )


def retention(aos: Aos, clock: Any = None) -> TableRetention:
    client = TableClient.from_connection_string(aos.connection_string, aos.settings.history_table)
    return TableRetention(client) if clock is None else TableRetention(client, clock=clock)


async def test_retention_deletes_exactly_the_expired_rows_and_keeps_everything_else(
    aos: Aos,
) -> None:
    cutoff, before, keep = populated(aos)
    store = retention(aos)
    try:
        done = await store.run(older_than=cutoff, budget_seconds=3600, pass_interval_seconds=600)
        write_history(aos, "c3", [DAYS + 10], created="2026-01-01T00:00:00Z")
        again = await store.run(older_than=cutoff, budget_seconds=3600, pass_interval_seconds=600)
        assert (again.partitions, again.history_deleted) == (0, 0)  # no new pass yet
        later = await store.run(older_than=cutoff, budget_seconds=3600)
        assert (later.partitions, later.history_deleted, later.pass_finished) == (
            3,
            1,
            True,
        )  # a1, b2, c3
    finally:
        await store.close()
    after = rows(aos)
    maintenance = {k for k in after if k[0] == MAINTENANCE_PARTITION}
    assert set(after) - maintenance == keep
    assert all(after[k] == before[k] for k in keep)  # untouched
    assert (done.history_deleted, done.receipts_deleted) == (130 + 250 + 7, 120 + 3)
    assert done.partitions == 4
    assert done.pass_finished
    assert after[(MAINTENANCE_PARTITION, "retention")]["partition"] == ""  # next run: new pass


async def test_a_run_stopped_by_its_budget_is_continued_by_the_next_from_the_cursor(
    aos: Aos,
) -> None:
    cutoff, _, keep = populated(aos)
    ticks = itertools.count()  # a clock that advances one "second" per look: no real time
    runs = []
    for _ in range(50):
        store = retention(aos, clock=lambda: float(next(ticks)))
        try:
            runs.append(await store.run(older_than=cutoff, budget_seconds=3))
        finally:
            await store.close()
        cursor = rows(aos)[(MAINTENANCE_PARTITION, "retention")]
        if runs[-1].pass_finished:
            break
        assert cursor["partition"]  # where the next run starts
        assert set(rows(aos)) >= keep  # nothing unexpired deleted on the way
    assert len(runs) > 3  # the budget did stop runs part-way
    assert not any(r.pass_finished for r in runs[:-1])
    assert sum(r.history_deleted for r in runs) == 130 + 250 + 7  # each row deleted once
    assert sum(r.receipts_deleted for r in runs) == 120 + 3
    assert {k for k in rows(aos) if k[0] != MAINTENANCE_PARTITION} == keep


async def test_the_hourly_timer_runs_retention(aos: Aos) -> None:
    days = aos.settings.history_retention_days
    write_history(aos, "a1", [days + 30] * 150 + [days - 1, 0], created="2025-01-01T00:00:00Z")
    await aos.host.invoke("purge_history", timer=TimerRequest(past_due=False))
    history = [k for k in rows(aos) if k[0] == "a1"]
    assert len(history) == 2


async def test_broadcast_receipts_and_releases_expire_like_an_agents_receipts(aos: Aos) -> None:
    """A broadcast's receipts live in its event's partition (``b|<event_id>``), and a failed
    event's release may be the only row of one: retention walks those partitions like an
    agent's and deletes by the same times."""
    old, new = DAYS + 10, DAYS - 1
    with sync_table(aos) as client:
        client.create_table()
    write_receipts(aos, "b|ev1", [old, new, old])
    released = format_timestamp(utc_now() - timedelta(days=old))
    with sync_table(aos) as client:
        client.upsert_entity(
            {"PartitionKey": "b|ev2", "RowKey": "receipt|a1", "failed": True, "failed_at": released}
        )
    store = retention(aos)
    try:
        run = await store.run(older_than=utc_now() - timedelta(days=DAYS), budget_seconds=3600)
    finally:
        await store.close()
    assert (run.receipts_deleted, run.partitions, run.pass_finished) == (3, 2, True)
    kept = {k for k in rows(aos) if k[0] != MAINTENANCE_PARTITION}
    assert kept == {("b|ev1", "receipt|r0001")}
