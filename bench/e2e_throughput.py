"""End to end: HTTP POST → events queue → `agent` entity → persisted state, against raw Azurite.

Run (it starts Azurite, so serialise with other Azurite users on shared machines):

    flock /tmp/aos-azurite.lock .venv/bin/python bench/e2e_throughput.py

It starts its own Azurite on free ports and the AOS app (`function_app.py`, the repository's
host.json) under `python -m devhost --no-azurite` as a child process, then measures, in one run:

* baseline: raw Azurite queue throughput with the SDK the app and the host use
  (azure-storage-queue, aio): `--concurrency` tasks send `--events` messages while `--concurrency`
  tasks receive (32 at a time) and delete them; messages/s from the first send to the last delete;
  and the same for one client, one call after the other (send all, then receive and delete all);
* throughput: `--events` events POSTed to `/api/agents/{id}/events` by `--concurrency` concurrent
  clients (the same concurrency); events/s from the first POST until `GET /api/agents/{id}` shows
  `counters.events_handled == --events`, i.e. until every event is applied and persisted;
* latency at an offered rate of half the throughput just measured (so that it measures the app,
  not the machine; `--rate` fixes it instead), `--paced-events` events, to a
  second agent): per event, from just before its POST is sent to the first `GET` of the agent whose
  answer contains it (`recent_events`, by event id; an event that entered and left the 8-entry
  window between two reads is not timed), and by count (the k-th POST to the first read with
  `events_handled >= k`; every event is timed); state read every `--read-interval-ms` (20 ms; the
  reads load the host too). p50/p95/p99, and the median of each stage from the timestamps the app
  records (`created_at` when the HTTP handler accepted it, `received_at` when the entity applied
  it) and the delivery's log line (the entity signal stored).

Prints a table and one JSON line. The devhost's log goes to bench/results/e2e_devhost.log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from azure.storage.queue.aio import QueueClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devhost.azurite import Azurite, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"


# ------------------------------------------------------------------------------------- baseline
async def baseline(connection_string: str, count: int, concurrency: int) -> float:
    """Raw queue messages/s: `concurrency` senders and `concurrency` receive+delete workers."""
    name = f"bench-{uuid.uuid4().hex[:12]}"
    async with QueueClient.from_connection_string(connection_string, name) as queue:
        await queue.create_queue()
        to_send = iter(range(count))
        deleted = 0

        async def sender() -> None:
            for i in to_send:  # a shared iterator: each message is sent once
                await queue.send_message(json.dumps({"i": i, "pad": "x" * 200}))

        async def receiver() -> None:
            nonlocal deleted
            while deleted < count:
                async for message in queue.receive_messages(messages_per_page=32, max_messages=32):
                    await queue.delete_message(message)
                    deleted += 1

        started = time.perf_counter()
        await asyncio.gather(
            *(sender() for _ in range(concurrency)), *(receiver() for _ in range(concurrency))
        )
        elapsed = time.perf_counter() - started
        await queue.delete_queue()
    return count / elapsed


async def sequential_baseline(connection_string: str, count: int) -> float:
    """Raw queue messages/s for one client: send `count` messages, then receive (32 at a time)
    and delete them all, one call after the other."""
    name = f"bench-{uuid.uuid4().hex[:12]}"
    async with QueueClient.from_connection_string(connection_string, name) as queue:
        await queue.create_queue()
        started = time.perf_counter()
        for i in range(count):
            await queue.send_message(json.dumps({"i": i, "pad": "x" * 200}))
        deleted = 0
        while deleted < count:
            async for message in queue.receive_messages(messages_per_page=32, max_messages=32):
                await queue.delete_message(message)
                deleted += 1
        elapsed = time.perf_counter() - started
        await queue.delete_queue()
    return count / elapsed


# ------------------------------------------------------------------------------------- the app
async def register(client: httpx.AsyncClient, agent_id: str) -> None:
    body = {"agent_id": agent_id, "purpose": "Measure the event path end to end"}
    response = await client.post("/api/agents", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"register answered {response.status_code}: {response.text[:300]}")


async def post_event(client: httpx.AsyncClient, agent_id: str, event_id: str, i: int) -> None:
    body = {"event_id": event_id, "type": "bench.tick", "data": {"i": i}}
    response = await client.post(f"/api/agents/{agent_id}/events", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"POST answered {response.status_code}: {response.text[:300]}")


async def context(client: httpx.AsyncClient, agent_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/agents/{agent_id}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def throughput(client: httpx.AsyncClient, count: int, concurrency: int) -> float:
    """Events/s from the first POST until the persisted state shows every event applied."""
    agent_id = f"burst{uuid.uuid4().hex[:8]}"
    await register(client, agent_id)
    to_send = iter(range(count))

    async def poster() -> None:
        for i in to_send:
            await post_event(client, agent_id, f"b{i}-{agent_id}", i)

    started = time.perf_counter()
    await asyncio.gather(*(poster() for _ in range(concurrency)))
    deadline = started + 300
    while (await context(client, agent_id))["counters"]["events_handled"] < count:
        if time.perf_counter() > deadline:
            raise TimeoutError("the state did not reach the event count in 300 s")
        await asyncio.sleep(0.02)
    return count / (time.perf_counter() - started)


@dataclass
class Paced:
    by_id: list[float]
    """ms from POST to the first read showing the event in `recent_events` (events so seen)."""
    by_count: list[float]
    """ms from the k-th POST to the first read with `events_handled >= k` (every event)."""
    stages: dict[str, float]
    """Median ms per stage, from the timestamps the app records (events seen by id)."""
    read_interval_ms: float
    accepted_at: dict[str, float]
    """Per event seen by id: when the HTTP handler accepted it, and when the entity applied it."""
    applied_at: dict[str, float]


async def paced(client: httpx.AsyncClient, rate: float, count: int, read_interval: float) -> Paced:
    """Offer `rate` events/s to a fresh agent; time each from its POST to its visibility."""
    agent_id = f"paced{uuid.uuid4().hex[:8]}"
    await register(client, agent_id)
    ids = [f"p{i}-{agent_id}" for i in range(count)]
    sent: dict[str, float] = {}
    seen: dict[str, tuple[float, str, str]] = {}  # id -> (read time, created_at, received_at)
    reads: list[tuple[float, int]] = []  # (read time, events_handled)
    done = asyncio.Event()

    async def observe() -> None:
        deadline = time.time() + count / rate + 120
        while time.time() < deadline:
            begun = time.perf_counter()
            state = await context(client, agent_id)
            now = time.time()
            handled = state["counters"]["events_handled"]
            reads.append((now, handled))
            for event in state["recent_events"]:
                if event["event_id"] not in seen:
                    seen[event["event_id"]] = (now, event["created_at"], event["received_at"])
            if done.is_set() and handled >= count:
                return
            await asyncio.sleep(max(0.0, begun + read_interval - time.perf_counter()))
        raise TimeoutError("the paced events were not all applied")

    async def send(i: int) -> None:
        sent[ids[i]] = time.time()
        await post_event(client, agent_id, ids[i], i)

    watcher = asyncio.create_task(observe())
    started = time.perf_counter()
    posts = []
    for i in range(count):
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        posts.append(asyncio.create_task(send(i)))
    await asyncio.gather(*posts)
    done.set()
    await watcher

    by_id = [(seen[i][0] - sent[i]) * 1000 for i in ids if i in seen]
    by_count = []
    position = 0
    for k, event_id in enumerate(ids, start=1):
        while reads[position][1] < k:
            position += 1
        by_count.append((reads[position][0] - sent[event_id]) * 1000)

    def at(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    timed = [(sent[i], *seen[i]) for i in ids if i in seen]
    stages = {
        "post_to_accepted": statistics.median((at(c) - s) * 1000 for s, _, c, _ in timed),
        "accepted_to_entity": statistics.median((at(r) - at(c)) * 1000 for _, _, c, r in timed),
        "entity_to_visible": statistics.median((v - at(r)) * 1000 for _, v, _, r in timed),
    }
    interval = (reads[-1][0] - reads[0][0]) * 1000 / max(len(reads) - 1, 1)
    accepted_at = {i: at(seen[i][1]) for i in ids if i in seen}
    applied_at = {i: at(seen[i][2]) for i in ids if i in seen}
    return Paced(by_id, by_count, stages, interval, accepted_at, applied_at)


def signalled_stages(log: Path, latency: Paced) -> dict[str, float]:
    """Split accepted → entity at the delivery's log line ("event <id> ...: signalled [...]"),
    written once the queue message was received, validated, routed and the entity signal stored."""
    signalled: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = re.match(
            r"(\S+ \S+),(\d{3}) INFO aos.services.delivery: event (\S+) (?:-> agent|\(.*\): signalled)",
            line,
        )
        if match and match.group(3) in latency.accepted_at:
            stamp = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
            signalled[match.group(3)] = stamp + int(match.group(2)) / 1000
    if not signalled:
        return {}
    ids = list(signalled)
    return {
        "accepted_to_signalled": statistics.median(
            (signalled[i] - latency.accepted_at[i]) * 1000 for i in ids
        ),
        "signalled_to_entity": statistics.median(
            (latency.applied_at[i] - signalled[i]) * 1000 for i in ids
        ),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def wait_up(client: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    deadline = time.perf_counter() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"devhost exited {process.returncode}; see {RESULTS}")
        try:
            await client.get("/api/health")
            return
        except httpx.TransportError:
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.1)


async def drive(
    args: argparse.Namespace, port: int, process: subprocess.Popen[bytes]
) -> tuple[float, Paced]:
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
    ) as client:
        await wait_up(client, process)
        await throughput(client, 50, args.concurrency)  # warm-up: imports, clients, tables
        events_per_s = await throughput(client, args.events, args.concurrency)
        args.rate = args.rate or round(events_per_s / 2, 1)
        latency = await paced(client, args.rate, args.paced_events, args.read_interval_ms / 1000)
    return events_per_s, latency


def measure(args: argparse.Namespace, connection_string: str) -> dict[str, Any]:
    raw = asyncio.run(baseline(connection_string, args.events, args.concurrency))
    raw_sequential = asyncio.run(sequential_baseline(connection_string, args.events))
    port = free_port()
    token = uuid.uuid4().hex[:8]
    env = {**os.environ, "AzureWebJobsStorage": connection_string, "AOS_TASK_HUB": f"Bench{token}"}
    command = [sys.executable, "-m", "devhost", "--no-azurite", "--port", str(port)]
    RESULTS.mkdir(exist_ok=True)
    log_path = RESULTS / "e2e_devhost.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            events_per_s, latency = asyncio.run(drive(args, port, process))
        finally:
            process.terminate()
            process.wait(20)
    result: dict[str, Any] = {
        "app": "aos",
        "cores": os.cpu_count(),
        "concurrency": args.concurrency,
        "events": args.events,
        "baseline_queue_msgs_per_s": round(raw, 1),
        "e2e_events_per_s": round(events_per_s, 1),
        "ratio_e2e_to_baseline": round(events_per_s / raw, 3),
        "baseline_queue_one_client_msgs_per_s": round(raw_sequential, 1),
        "ratio_e2e_to_one_client_baseline": round(events_per_s / raw_sequential, 3),
        "offered_rate_per_s": args.rate,
        "paced_events": args.paced_events,
    }
    for name, values in (("by_count", latency.by_count), ("by_id", latency.by_id)):
        result[f"latency_{name}_samples"] = len(values)
        for q in (50, 95, 99):
            result[f"latency_{name}_ms_p{q}"] = round(percentile(values, q), 1)
        result[f"latency_{name}_ms_max"] = round(max(values), 1)
    for stage, ms in {**latency.stages, **signalled_stages(log_path, latency)}.items():
        result[f"median_ms_{stage}"] = round(ms, 1)
    result["state_read_interval_ms"] = round(latency.read_interval_ms, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000, help="events (and baseline messages)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients, both runs")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="offered events/s for latency (default: half the measured throughput)",
    )
    parser.add_argument("--paced-events", type=int, default=500)
    parser.add_argument(
        "--read-interval-ms", type=float, default=20.0, help="how often the state is read"
    )
    args = parser.parse_args()
    with Azurite() as azurite:
        result = measure(args, azurite.connection_string)
    width = max(len(k) for k in result)
    print(f"{'metric':<{width}}  value")
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
