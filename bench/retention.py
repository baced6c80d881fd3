"""How fast retention deletes expired history records and delivery receipts, run after run.

Run (it starts Azurite, so serialise with other Azurite users on shared machines):

    flock /tmp/aos-suite.lock .venv/bin/python bench/retention.py [--rows 200000]

Against its own in-memory Azurite it writes ``--rows`` expired rows (90 % history records, 10 %
delivery receipts, realistic sizes) over ``--agents`` agents, each agent also keeping
``--kept`` unexpired records and a fifth as many unexpired receipts. Then:

* **baseline**: one run of the retention this replaced (``HistoryArchive.purge`` and
  ``DeliveryReceipts.purge`` with their 5,000-row limit: a filter on a non-key property, so the
  whole table is scanned), timed;
* **retention by the keys** (``TableRetention``): runs of ``--budget`` seconds each, resuming from
  the cursor row, until a run finishes its pass; rows deleted per second over all runs.

It checks that every expired row is gone and every kept row is still there, prints a table and
one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aos.adapters.azure.history import TableHistoryArchive, row_from_record  # noqa: E402
from aos.adapters.azure.maintenance import MAINTENANCE_PARTITION, TableRetention  # noqa: E402
from aos.adapters.azure.receipts import TableDeliveryReceipts  # noqa: E402
from aos.domain.history import HistoryRecord  # noqa: E402
from aos.domain.models import format_timestamp, utc_now  # noqa: E402
from devhost.azurite import Azurite  # noqa: E402

RETENTION_DAYS = 365
GENERATION = "2024-03-01T00:00:00.000000Z"
OLD_PURGE_LIMIT = 5000
"""The old timer's limit per run and per kind (history, receipts)."""


def history_rows(agent_id: str, expired: int, kept: int) -> list[dict[str, Any]]:
    """An agent's records: ``expired`` older than the retention, then ``kept`` newer ones."""
    now = utc_now()
    rows = []
    for i in range(expired + kept):
        age = timedelta(days=RETENTION_DAYS + 30) if i < expired else timedelta(days=1)
        record = HistoryRecord(
            agent_id=agent_id,
            generation=GENERATION,
            sequence=i + 1,
            kind="event",
            event_id=uuid.UUID(int=i).hex,
            type="order.created",
            recorded_at=format_timestamp(now - age + timedelta(seconds=i)),
            payload={
                "event_id": uuid.UUID(int=i).hex,
                "type": "order.created",
                "source": "shop",
                "data": {"order": i, "total": 12.5, "note": "Two blue notebooks, gift-wrapped"},
            },
            result={"ok": True},
        )
        rows.append(row_from_record(record))
    return rows


def receipt_rows(agent_id: str, expired: int, kept: int) -> list[dict[str, Any]]:
    now = utc_now()
    return [
        {
            "PartitionKey": agent_id,
            "RowKey": f"receipt|{uuid.uuid4().hex}",
            "message_id": uuid.uuid4().hex,
            "status": "signalled",
            "generation": GENERATION,
            "claimed_at": format_timestamp(
                now - timedelta(days=RETENTION_DAYS + 30 if i < expired else 1)
            ),
        }
        for i in range(expired + kept)
    ]


async def write(client: TableClient, rows: list[dict[str, Any]], concurrency: int = 8) -> None:
    """Upsert ``rows`` (all one partition) in transactions of 100, ``concurrency`` at a time."""
    groups = [rows[i : i + 100] for i in range(0, len(rows), 100)]
    gate = asyncio.Semaphore(concurrency)

    async def one(group: list[dict[str, Any]]) -> None:
        async with gate:
            await client.submit_transaction(
                [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in group]
            )

    await asyncio.gather(*(one(g) for g in groups))


async def count(client: TableClient) -> tuple[int, int]:
    """(expired, kept) rows in the table, outside the maintenance partition."""
    cutoff = format_timestamp(utc_now() - timedelta(days=RETENTION_DAYS))
    expired = kept = 0
    async for row in client.list_entities(select=["PartitionKey", "recorded_at", "claimed_at"]):
        if row["PartitionKey"] == MAINTENANCE_PARTITION:
            continue
        when = str(row.get("recorded_at") or row.get("claimed_at"))
        if when < cutoff:
            expired += 1
        else:
            kept += 1
    return expired, kept


async def measure(args: argparse.Namespace, connection_string: str) -> dict[str, Any]:
    table = f"Retention{uuid.uuid4().hex[:12]}"
    client = TableClient.from_connection_string(connection_string, table)
    await client.create_table()
    per_agent = args.rows // args.agents
    history_share = per_agent * 9 // 10
    begin = time.perf_counter()
    for a in range(args.agents):
        agent_id = f"agent-{a:05d}"
        await write(client, history_rows(agent_id, history_share, args.kept))
        await write(client, receipt_rows(agent_id, per_agent - history_share, args.kept // 5))
    written = time.perf_counter() - begin
    expired_before, kept_before = await count(client)

    old_history = TableHistoryArchive(TableClient.from_connection_string(connection_string, table))
    old_receipts = TableDeliveryReceipts(
        TableClient.from_connection_string(connection_string, table)
    )
    cutoff = utc_now() - timedelta(days=RETENTION_DAYS)
    begin = time.perf_counter()
    old = await old_history.purge(older_than=cutoff, limit=OLD_PURGE_LIMIT)
    old += await old_receipts.purge(older_than=cutoff, limit=OLD_PURGE_LIMIT)
    old_seconds = time.perf_counter() - begin
    await old_history.close()
    await old_receipts.close()

    runs: list[dict[str, Any]] = []
    begin = time.perf_counter()
    while True:
        retention = TableRetention(TableClient.from_connection_string(connection_string, table))
        start = time.perf_counter()
        done = await retention.run(older_than=cutoff, budget_seconds=args.budget)
        runs.append(
            {
                "history": done.history_deleted,
                "receipts": done.receipts_deleted,
                "seconds": round(time.perf_counter() - start, 2),
                "pass_finished": done.pass_finished,
            }
        )
        await retention.close()
        if done.pass_finished or len(runs) > 10_000:
            break
    seconds = time.perf_counter() - begin
    deleted = sum(r["history"] + r["receipts"] for r in runs)
    expired_after, kept_after = await count(client)
    await client.delete_table()
    await client.close()
    if expired_after or kept_after != kept_before or deleted + old != expired_before:
        raise SystemExit(
            f"wrong rows: {expired_after} expired left, kept {kept_before} -> {kept_after}, "
            f"deleted {deleted} + {old} of {expired_before}"
        )
    return {
        "expired_rows": expired_before,
        "kept_rows": kept_before,
        "agents": args.agents,
        "write_seconds": round(written, 1),
        "baseline_rows": old,
        "baseline_seconds": round(old_seconds, 2),
        "baseline_rows_per_s": round(old / old_seconds, 1),
        "baseline_rows_per_hour_cap": 2 * OLD_PURGE_LIMIT,
        "runs": len(runs),
        "budget_seconds": args.budget,
        "deleted": deleted,
        "seconds": round(seconds, 1),
        "rows_per_s": round(deleted / seconds, 1),
        "rows_per_run_budget": round(deleted / seconds * args.budget),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="expired rows (200000: the goal)")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--kept", type=int, default=500, help="unexpired records per agent")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per retention run")
    args = parser.parse_args()
    with Azurite() as azurite:
        result = asyncio.run(measure(args, azurite.connection_string))
    lines = [
        ("expired rows written (history + receipts)", f"{result['expired_rows']:,}"),
        ("unexpired rows kept", f"{result['kept_rows']:,}"),
        ("agents", f"{result['agents']:,}"),
        ("baseline: the old hourly purge, one run", f"{result['baseline_rows']:,} in "
         f"{result['baseline_seconds']} s = {result['baseline_rows_per_s']:,}/s, capped at "
         f"{OLD_PURGE_LIMIT:,} records + {OLD_PURGE_LIMIT:,} receipts an hour"),
        ("retention runs (budget each)", f"{result['runs']} x {result['budget_seconds']} s"),
        ("retention: rows deleted", f"{result['deleted']:,} in {result['seconds']} s"),
        ("retention: rows / s", f"{result['rows_per_s']:,}"),
        ("retention: rows per run of 240 s (6 runs an hour)",
         f"{round(result['rows_per_s'] * 240):,} (100 events/s add 360,000 records and "
         "360,000 receipts an hour)"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
