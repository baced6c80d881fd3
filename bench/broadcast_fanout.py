"""A broadcast to N subscribers against N single POSTs to the same agents, in one run.

It starts its own Azurite on free ports and the AOS app under `python -m devhost --no-azurite` as
a child process, registers N agents subscribed to `tick<N>` (not timed), then for each N measures:

* singles: N events, one `POST /api/agents/{id}/events` per agent (8 concurrent clients), from the
  first POST until every event is applied and persisted;
* broadcast: one `POST /api/events` of type `tick<N>`, from the POST until every recipient's event
  is applied and persisted.

Before each timed phase one event goes to an agent that is not measured (`pace`), so that both
phases start with the queue listener polling, not backed off for up to 2 s.

The broadcast is timed first: Azurite's in-memory store collects the queue's deleted messages
later, in one pass that holds up every request for as long as it runs (its Loki collection
re-indexes after each removal; 40-60 s once 10,000 messages went through), and timed after the
singles the broadcast was charged with the singles' garbage.

Both end the same way, observed from outside the app so that observing costs it nothing: the
events queue holds no message (visible or leased; a message is deleted only after its signals are
stored) and the host's entity table holds no signal row (a signal row is deleted in the
transaction that stores the state its operation produced). Reading every agent over HTTP until
it shows the event, as an earlier version did, cost the app as much CPU as delivering the events
and made the two paths look alike. Target: at least 2x, and broadcast time per agent about
constant from the smallest N to the largest (linear in N).

Then it checks every event was applied exactly once: it waits until the events queue is empty
and the host idle, reads every agent again and requires ``events_handled`` to be exactly 3 (the
warm-up broadcast, the single, the timed broadcast), not merely at least 3.

    .venv/bin/python bench/broadcast_fanout.py [--sizes 300,1200] [--large]   # --large adds 10,000

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e_throughput import RESULTS, wait_up  # noqa: E402

from devhost.azurite import Azurite, free_port  # noqa: E402
from devhost.host import entities_table_name  # noqa: E402

READERS = 16
POSTERS = 8


async def register(client: httpx.AsyncClient, ids: list[str], topic: str) -> None:
    gate = asyncio.Semaphore(POSTERS)

    async def one(agent_id: str) -> None:
        async with gate:
            body = {"purpose": "Count the ticks", "subscriptions": [topic]}
            answer = await client.put(f"/api/agents/{agent_id}", json=body)
            answer.raise_for_status()

    await asyncio.gather(*(one(i) for i in ids))


@dataclass
class Observer:
    """The events queue and the local host's entity table, read directly in Azurite."""

    queue: Any
    entities: Any

    async def settled(self) -> None:
        """Wait until no event is queued or leased and no signal waits to be applied (bounded:
        10 minutes). The queue is read first: a message leaves it only after its signal rows
        exist, so an empty queue then no signal rows means everything accepted is persisted."""
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline:
            properties = await self.queue.get_queue_properties()
            if not properties.approximate_message_count and not await self._signals_pending():
                return
            await asyncio.sleep(0.02)
        raise TimeoutError("the events were not all applied within 10 minutes")

    async def _signals_pending(self) -> bool:
        rows = self.entities.query_entities(
            "PartitionKey eq 'entities' and RowKey ge 'sig|' and RowKey lt 'sig}'",
            select=["RowKey"],
            results_per_page=1,
        )
        async for _ in rows:
            return True
        return False


async def pace(client: httpx.AsyncClient, pacer: str, observer: Observer) -> None:
    """One event to an agent outside the measured ones, applied before a timed phase starts: the
    queue listener has just found a message, so it polls again within 100 ms. Otherwise a phase
    waited for the listener's next poll, which backs off to `maxPollingInterval` (2 s) while the
    queue is empty: up to 2 s of nothing, at random, in either phase (the Functions host polls
    the same way; what is measured here is the fan-out, not the idle poll)."""
    answer = await client.post(f"/api/agents/{pacer}/events", json={"type": "pace"})
    answer.raise_for_status()
    await observer.settled()


async def singles(client: httpx.AsyncClient, ids: list[str], observer: Observer) -> float:
    gate = asyncio.Semaphore(POSTERS)

    async def post(agent_id: str) -> None:
        async with gate:
            answer = await client.post(f"/api/agents/{agent_id}/events", json={"type": "single"})
            answer.raise_for_status()

    begin = time.perf_counter()
    await asyncio.gather(*(post(i) for i in ids))
    await observer.settled()
    return time.perf_counter() - begin


async def broadcast(
    client: httpx.AsyncClient, ids: list[str], topic: str, observer: Observer
) -> float:
    begin = time.perf_counter()
    answer = await client.post("/api/events", json={"type": topic})
    answer.raise_for_status()
    assert answer.json()["subscribers"] == len(ids), answer.text
    await observer.settled()
    return time.perf_counter() - begin


async def exactly(client: httpx.AsyncClient, ids: list[str], count: int, queue: Any) -> int:
    """How many agents did not handle exactly ``count`` events, once the events queue has been
    empty (visible and leased messages) for 2 s."""
    quiet_since = None
    while quiet_since is None or time.perf_counter() - quiet_since < 2:
        properties = await queue.get_queue_properties()
        if properties.approximate_message_count:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        await asyncio.sleep(0.2)
    gate = asyncio.Semaphore(READERS)

    async def handled(agent_id: str) -> int:
        async with gate:
            answer = await client.get(f"/api/agents/{agent_id}")
        return int(answer.json()["counters"]["events_handled"])

    counts = await asyncio.gather(*(handled(i) for i in ids))
    return sum(1 for c in counts if c != count)


async def drive(
    sizes: list[int], port: int, process: subprocess.Popen[bytes], observer: Observer
) -> list[dict[str, Any]]:
    rows = []
    limits = httpx.Limits(max_connections=READERS + POSTERS + 4)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits
    ) as client:
        await wait_up(client, process)
        for size in sizes:
            ids = [f"fan{size}-{i:05d}" for i in range(size)]
            topic = f"tick{size}"  # each size its own subscribers
            pacer = f"fan{size}-pacer"
            await register(client, ids, topic)
            await register(client, [pacer], f"pace{size}")  # not a subscriber of `topic`
            await broadcast(client, ids, topic, observer)  # warm-up: clients, tables, caches
            # The broadcast before the singles: Azurite collects the queue's deleted messages
            # later, in one pass that stops everything else (measured: 40-60 s after 10,000
            # singles); after the singles, it landed in the broadcast's time.
            await pace(client, pacer, observer)
            broadcast_s = await broadcast(client, ids, topic, observer)
            await pace(client, pacer, observer)
            single_s = await singles(client, ids, observer)
            wrong = await exactly(client, ids, 3, observer.queue)
            rows.append(
                {
                    "subscribers": size,
                    "singles_s": round(single_s, 2),
                    "broadcast_s": round(broadcast_s, 2),
                    "ratio_singles_to_broadcast": round(single_s / broadcast_s, 2),
                    "broadcast_ms_per_subscriber": round(broadcast_s / size * 1000, 2),
                    "not_exactly_once": wrong,
                }
            )
    return rows


async def drive_observed(
    sizes: list[int], port: int, process: subprocess.Popen[bytes], azurite: Azurite, hub: str
) -> list[dict[str, Any]]:
    from azure.data.tables.aio import TableClient
    from azure.storage.queue.aio import QueueClient

    connection = azurite.connection_string
    async with (
        QueueClient.from_connection_string(connection, "aos-events") as queue,
        TableClient.from_connection_string(connection, entities_table_name(hub)) as entities,
    ):
        return await drive(sizes, port, process, Observer(queue, entities))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="300,1200", help="subscriber counts, comma-separated")
    parser.add_argument("--large", action="store_true", help="also 10,000 subscribers")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] + ([10_000] if args.large else [])
    with Azurite() as azurite:
        port = free_port()
        hub = f"Fan{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "AzureWebJobsStorage": azurite.connection_string,
            "AOS_TASK_HUB": hub,
            "AOS_EVENTS_QUEUE": "aos-events",
        }
        command = [sys.executable, "-m", "devhost", "--no-azurite", "--port", str(port)]
        RESULTS.mkdir(exist_ok=True)
        with (RESULTS / "broadcast_devhost.log").open("wb") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                rows = asyncio.run(drive_observed(sizes, port, process, azurite, hub))
            finally:
                process.terminate()
                process.wait(20)
    first, last = rows[0], rows[-1]
    result = {
        "bench": "broadcast_fanout",
        "cores": os.cpu_count(),
        "rows": rows,
        "min_ratio_singles_to_broadcast": min(r["ratio_singles_to_broadcast"] for r in rows),
        "growth_per_subscriber_last_to_first": round(
            last["broadcast_ms_per_subscriber"] / first["broadcast_ms_per_subscriber"], 2
        ),
    }
    result["every_event_exactly_once"] = not any(r["not_exactly_once"] for r in rows)
    keys = list(rows[0])
    print("  ".join(f"{k:>28}" for k in keys))
    for row in rows:
        print("  ".join(f"{row[k]!s:>28}" for k in keys))
    print(json.dumps(result))
    return 0 if result["every_event_exactly_once"] else 1


if __name__ == "__main__":
    sys.exit(main())
