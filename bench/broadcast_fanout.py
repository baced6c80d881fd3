"""A broadcast to N subscribers against N single POSTs to the same agents, in one run.

It starts its own Azurite on free ports and the AOS app under `python -m devhost --no-azurite` as
a child process, registers N agents subscribed to `tick<N>` (not timed), then for each N measures:

* singles: N events, one `POST /api/agents/{id}/events` per agent (8 concurrent clients), from the
  first POST until every agent shows its event (`counters.events_handled`);
* broadcast: one `POST /api/events` of type `tick<N>`, from the POST until every agent shows it.

Both are timed the same way (agents are read 16 at a time, each until it shows the event), so the
ratio singles / broadcast compares the paths, not the reads. Target: at least 2x, and broadcast
time per agent about constant from the smallest N to the largest (linear in N).

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
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e_throughput import RESULTS, wait_up  # noqa: E402

from devhost.azurite import Azurite, free_port  # noqa: E402

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


async def until_handled(client: httpx.AsyncClient, ids: list[str], count: int) -> None:
    """Wait until every agent has handled ``count`` events (bounded: 10 minutes)."""
    gate = asyncio.Semaphore(READERS)
    deadline = time.perf_counter() + 600

    async def one(agent_id: str) -> None:
        while True:
            async with gate:
                answer = await client.get(f"/api/agents/{agent_id}")
            if answer.status_code == 200 and answer.json()["counters"]["events_handled"] >= count:
                return
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{agent_id} did not handle {count} events")
            await asyncio.sleep(0.05)

    await asyncio.gather(*(one(i) for i in ids))


async def singles(client: httpx.AsyncClient, ids: list[str], count: int) -> float:
    gate = asyncio.Semaphore(POSTERS)

    async def post(agent_id: str) -> None:
        async with gate:
            answer = await client.post(f"/api/agents/{agent_id}/events", json={"type": "single"})
            answer.raise_for_status()

    begin = time.perf_counter()
    await asyncio.gather(*(post(i) for i in ids))
    await until_handled(client, ids, count)
    return time.perf_counter() - begin


async def broadcast(client: httpx.AsyncClient, ids: list[str], topic: str, count: int) -> float:
    begin = time.perf_counter()
    answer = await client.post("/api/events", json={"type": topic})
    answer.raise_for_status()
    assert answer.json()["subscribers"] == len(ids), answer.text
    await until_handled(client, ids, count)
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
    sizes: list[int], port: int, process: subprocess.Popen[bytes], queue: Any
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
            await register(client, ids, topic)
            await broadcast(client, ids, topic, 1)  # warm-up: clients, tables, caches
            single_s = await singles(client, ids, 2)
            broadcast_s = await broadcast(client, ids, topic, 3)
            wrong = await exactly(client, ids, 3, queue)
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


async def drive_with_queue(
    sizes: list[int], port: int, process: subprocess.Popen[bytes], azurite: Azurite
) -> list[dict[str, Any]]:
    from azure.storage.queue.aio import QueueClient

    async with QueueClient.from_connection_string(azurite.connection_string, "aos-events") as queue:
        return await drive(sizes, port, process, queue)


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
        token = uuid.uuid4().hex[:8]
        env = {
            **os.environ,
            "AzureWebJobsStorage": azurite.connection_string,
            "AOS_TASK_HUB": f"Fan{token}",
            "AOS_EVENTS_QUEUE": "aos-events",
        }
        command = [sys.executable, "-m", "devhost", "--no-azurite", "--port", str(port)]
        RESULTS.mkdir(exist_ok=True)
        with (RESULTS / "broadcast_devhost.log").open("wb") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                rows = asyncio.run(drive_with_queue(sizes, port, process, azurite))
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
