"""What archiving history costs per event, with and without one table transaction per entity batch.

Run (it starts Azurite, so serialise with other Azurite users on shared machines):

    flock /tmp/aos-azurite.lock .venv/bin/python bench/archive_cost.py

Measures, in one run, against its own in-memory Azurite:

* the entity alone: ``handle_event`` through the durable SDK's handler, batches of 100, no archive
  (the work every event costs anyway; the baseline the archive is compared with);
* the entity function as registered (the SDK's handler plus the archive write when the batch
  ends), writing each batch's records in transactions of up to 100 rows (what the app does);
* the same with one upsert per record (no batching);
* the entity state's size after 1,000 and after 100,000 events (the archive is what lets it stay
  flat).

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.durable_functions as df
from azure.data.tables import TableClient
from azure.functions._durable_functions import EntityContext

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aos import AgentKinds, Limits  # noqa: E402
from aos.adapters.azure.history import Operation, TableHistoryWriter  # noqa: E402
from aos.agents.entity import AgentEntity, EntityBatch  # noqa: E402
from aos.functions.app import create_app  # noqa: E402
from aos.functions.container import AppRuntime  # noqa: E402
from aos.settings import Settings, StorageConnection  # noqa: E402
from devhost.azurite import Azurite  # noqa: E402

BATCH = 100
SPEC = {"purpose": "Grow revenue through delighted customers"}


def batch_handle(entity: AgentEntity) -> Callable[[Any], str]:
    """The SDK's entity handle for each batch, as the app's entity function makes it."""

    def handle(context: Any) -> str:
        result: str = df.Entity.create(entity.for_batch(EntityBatch()))(context)
        return result

    return handle


def op(name: str, value: Any, op_id: str) -> dict[str, Any]:
    return {"name": name, "input": json.dumps(json.dumps(value)), "signal": True, "id": op_id}


def events(start: int, count: int) -> list[dict[str, Any]]:
    return [
        op(
            "handle_event",
            {
                "event_id": uuid.UUID(int=i).hex,
                "type": "order.created",
                "source": "shop",
                "data": {"order": i, "total": 12.5, "note": "Two blue notebooks, gift-wrapped"},
            },
            str(i),
        )
        for i in range(start, start + count)
    ]


class Entity:
    """One entity instance driven like the host drives it: batch JSON in, state carried over."""

    def __init__(self, handle: Callable[[Any], str], key: str) -> None:
        self.handle, self.key = handle, key
        self.state: str | None = None

    def run(self, ops: list[dict[str, Any]]) -> None:
        body = {
            "self": {"name": "agent", "key": self.key},
            "state": self.state,
            "exists": self.state is not None,
            "batch": ops,
        }
        out = json.loads(self.handle(EntityContext(json.dumps(body))))
        if any(r["isError"] for r in out["results"]):
            raise RuntimeError(out["results"][0]["result"])
        self.state = out["entityState"]


def per_event_us(entity: Entity, count: int, start: int) -> float:
    entity.run([op("configure", SPEC, "c")])
    batches = [events(start + b * BATCH, BATCH) for b in range(count // BATCH)]
    begin = time.perf_counter()
    for batch in batches:
        entity.run(batch)
    return (time.perf_counter() - begin) / count * 1e6


class RowByRowWriter(TableHistoryWriter):
    """The archive without transactions, one upsert per row: what batching is measured against."""

    @staticmethod
    def _upsert(client: Any, operations: list[Operation]) -> None:
        for row, mode in operations:
            client.upsert_entity(row, mode=mode)


def registered_handle(connection_string: str, table: str, *, batched: bool) -> Callable[[Any], str]:
    """The app's ``agent`` function with its archive writing to ``table``."""
    kind = TableHistoryWriter if batched else RowByRowWriter
    writer = kind(lambda: TableClient.from_connection_string(connection_string, table))
    settings = Settings(storage=StorageConnection(connection_string=connection_string))
    runtime = AppRuntime(load_settings=lambda: settings, history_writer=writer)
    (function,) = [
        f for f in create_app(runtime=runtime).get_functions() if f.get_function_name() == "agent"
    ]
    handle: Callable[[Any], str] = function.get_user_function()
    return handle


def rows(connection_string: str, table: str, key: str) -> int:
    with TableClient.from_connection_string(connection_string, table) as client:
        found = client.query_entities(
            "PartitionKey eq @pk", parameters={"pk": key}, select=["RowKey"]
        )
        return sum(1 for _ in found)


def state_after(count: int) -> int:
    entity = Entity(batch_handle(AgentEntity(AgentKinds.builtin(), Limits())), "size")
    per_event_us(entity, count, 0)
    return len(entity.state or "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3_000, help="events per measurement")
    args = parser.parse_args()
    count = args.events - args.events % BATCH

    with Azurite() as azurite:
        cs = azurite.connection_string
        table = f"bench{uuid.uuid4().hex[:12]}"
        alone = batch_handle(AgentEntity(AgentKinds.builtin(), Limits()))
        per_event_us(Entity(alone, "warm"), 1_000, 10**9)  # warm up imports and caches
        per_event_us(Entity(registered_handle(cs, table, batched=True), "warm"), 1_000, 10**9)
        entity_us = per_event_us(Entity(alone, "alone"), count, 0)
        batched_us = per_event_us(
            Entity(registered_handle(cs, table, batched=True), "tx"), count, 0
        )
        single_us = per_event_us(
            Entity(registered_handle(cs, table, batched=False), "single"), count, 0
        )
        archived = rows(cs, table, "tx"), rows(cs, table, "single")
    if archived != (count, count):
        raise RuntimeError(f"expected {count} archived rows per run, found {archived}")
    size_1k, size_100k = state_after(1_000), state_after(100_000)

    batched_cost, single_cost = batched_us - entity_us, single_us - entity_us
    table_rows = [
        ("entity alone (SDK handler, no archive)", f"{entity_us:,.1f} µs/event"),
        ("entity + archive, one transaction per batch", f"{batched_us:,.1f} µs/event"),
        ("entity + archive, one upsert per record", f"{single_us:,.1f} µs/event"),
        ("archive cost, transactions", f"{batched_cost:,.1f} µs/event"),
        ("archive cost, single upserts", f"{single_cost:,.1f} µs/event"),
        ("single upserts / transactions (archive cost)", f"{single_cost / batched_cost:.1f}x"),
        ("state after 1,000 events", f"{size_1k:,} bytes"),
        ("state after 100,000 events", f"{size_100k:,} bytes"),
    ]
    width = max(len(r[0]) for r in table_rows)
    print(f"{count:,} events per measurement, batches of {BATCH}, Azurite in memory")
    for name, value in table_rows:
        print(f"{name:<{width}}  {value}")
    print(
        json.dumps(
            {
                "bench": "archive_cost",
                "events": count,
                "batch_size": BATCH,
                "entity_us_per_event": round(entity_us, 1),
                "batched_us_per_event": round(batched_us, 1),
                "single_us_per_event": round(single_us, 1),
                "archive_batched_us_per_event": round(batched_cost, 1),
                "archive_single_us_per_event": round(single_cost, 1),
                "single_over_batched": round(single_cost / batched_cost, 2),
                "state_after_1000_bytes": size_1k,
                "state_after_100000_bytes": size_100k,
            }
        )
    )


if __name__ == "__main__":
    main()
