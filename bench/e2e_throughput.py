"""End-to-end throughput of the local host: HTTP POST → persisted entity state, versus raw Azurite.

Run (Azurite-based, so serialise with other suites):

    flock /tmp/aos-azurite.lock .venv/bin/python bench/e2e_throughput.py

It starts its own Azurite on free ports and `python -m devhost` as a child process, then measures

* baseline: raw Azurite queue send + receive + delete with azure-storage-queue (same SDK the host
  uses), messages/s;
* burst: N events POSTed with 8 concurrent clients, events/s until the entity state shows them all;
* latency at a fixed offered rate (default 100 events/s): per event, POST sent → entity state
  reflects it (p50/p95/p99), observed by polling the state every 10 ms.

With `function_app.py` present it drives the AOS API (`POST /api/agents/{id}/events`, through the
events queue, counted by `counters.events_handled`); otherwise the devhost test app (`POST
/api/counters/{key}`, a direct entity signal). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from azure.storage.queue import QueueClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devhost.azurite import Azurite, free_port  # noqa: E402


def baseline(connection_string: str, count: int) -> float:
    """Raw queue messages/s: send `count`, then receive (32 at a time) and delete them all."""
    name = f"bench-{uuid.uuid4().hex[:12]}"
    with QueueClient.from_connection_string(connection_string, name) as queue:
        queue.create_queue()
        started = time.perf_counter()
        for i in range(count):
            queue.send_message(json.dumps({"i": i}))
        done = 0
        while done < count:
            for message in queue.receive_messages(messages_per_page=32, max_messages=32):
                queue.delete_message(message)
                done += 1
        elapsed = time.perf_counter() - started
        queue.delete_queue()
    return count / elapsed


class Target:
    """How to post one event and how many events the persisted state reflects."""

    def __init__(self, client: httpx.Client, aos: bool) -> None:
        self.client = client
        self.aos = aos
        self.key = f"bench{uuid.uuid4().hex[:8]}"

    def setup(self) -> None:
        if self.aos:
            response = self.client.post(
                "/api/agents",
                json={"agent_id": self.key, "kind": "generic", "purpose": "Benchmark agent"},
            )
            response.raise_for_status()

    def post(self, i: int) -> None:
        if self.aos:
            body = {"event_id": f"e{i}-{self.key}", "type": "bench.tick", "data": {"i": i}}
            response = self.client.post(f"/api/agents/{self.key}/events", json=body)
        else:
            response = self.client.post(f"/api/counters/{self.key}", json=i + 1)
        if response.status_code != 202:
            raise RuntimeError(f"POST answered {response.status_code}: {response.text[:200]}")

    def applied(self) -> int:
        path = f"/api/agents/{self.key}" if self.aos else f"/api/counters/{self.key}"
        response = self.client.get(path)
        if response.status_code == 404:
            return 0
        state = response.json()
        if self.aos:
            context = state.get("context", state)
            return int(context["counters"]["events_handled"])
        return int(state["ops"])


def wait_until(check: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("state did not catch up")
        time.sleep(0.01)


def burst(target: Target, count: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(target.post, range(count)))
    wait_until(lambda: target.applied() >= count, 300)
    return count / (time.perf_counter() - started)


def paced(target: Target, rate: float, count: int) -> list[float]:
    """Offer `rate` events/s; latency of event k = first time the state shows >= k events."""
    base = target.applied()
    sent: list[float] = [0.0] * count
    seen: list[float] = [0.0] * count
    stop = threading.Event()

    def observe() -> None:
        reached = 0
        while reached < count and not stop.is_set():
            now_applied = target.applied() - base
            now = time.perf_counter()
            while reached < min(now_applied, count):
                seen[reached] = now
                reached += 1
            time.sleep(0.01)

    watcher = threading.Thread(target=observe)
    watcher.start()
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        futures = []
        for i in range(count):
            due = start + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            sent[i] = time.perf_counter()
            futures.append(pool.submit(target.post, base + i))
        for future in futures:
            future.result()
    watcher.join(120)
    stop.set()
    return [(s - t) * 1000 for s, t in zip(seen, sent, strict=True) if s]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500, help="events in the burst")
    parser.add_argument("--rate", type=float, default=100.0, help="offered events/s")
    parser.add_argument("--paced-events", type=int, default=500)
    parser.add_argument("--baseline-messages", type=int, default=500)
    parser.add_argument("--sample-app", action="store_true", help="use the devhost test app")
    args = parser.parse_args()
    aos = (ROOT / "function_app.py").exists() and not args.sample_app
    with Azurite() as azurite:
        raw = baseline(azurite.connection_string, args.baseline_messages)
        port = free_port()
        token = uuid.uuid4().hex[:8]
        env = {
            **os.environ,
            "AzureWebJobsStorage": azurite.connection_string,
            "AOS_TASK_HUB": f"Bench{token}",
            "DEVHOST_TEST_QUEUE": f"bench-{token}",
        }
        command = [sys.executable, "-m", "devhost", "--no-azurite", "--port", str(port)]
        if not aos:
            command += ["--root", str(ROOT / "tests" / "devhost"), "--app", "devhost_sample_app"]
        log = (ROOT / "bench" / "results").resolve()
        log.mkdir(exist_ok=True)
        with (log / "e2e_devhost.log").open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                    wait_until(lambda: _up(client), 60)
                    target = Target(client, aos)
                    target.setup()
                    events_per_s = burst(target, args.events)
                    latencies = paced(target, args.rate, args.paced_events)
            finally:
                process.terminate()
                process.wait(20)
    result: dict[str, Any] = {
        "app": "aos" if aos else "devhost-sample",
        "baseline_queue_msgs_per_s": round(raw, 1),
        "e2e_events_per_s": round(events_per_s, 1),
        "ratio_e2e_to_baseline": round(events_per_s / raw, 3),
        "offered_rate_per_s": args.rate,
        "latency_ms_p50": round(percentile(latencies, 50), 1),
        "latency_ms_p95": round(percentile(latencies, 95), 1),
        "latency_ms_p99": round(percentile(latencies, 99), 1),
        "latency_samples": len(latencies),
        "latency_mean_ms": round(statistics.fmean(latencies), 1),
    }
    width = max(len(k) for k in result)
    print(f"{'metric':<{width}}  value")
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))
    return 0


def _up(client: httpx.Client) -> bool:
    try:
        client.get("/api/health")
    except httpx.TransportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
