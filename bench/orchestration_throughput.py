# mypy: disable-error-code="untyped-decorator,misc,no-untyped-call"
"""Orchestrations under the local host: N x (3 activities + 1 call_entity), against entity signals.

Run (it starts Azurite, so serialise with other Azurite users on shared machines):

    flock /tmp/aos-azurite.lock .venv/bin/python bench/orchestration_throughput.py

It starts its own Azurite on free ports and a `DevHost` in this process over a small app defined
here (an orchestration calling `square` three times, then `call_entity` on a `tally` entity), and
measures, in one run, through the SDK's own `DurableOrchestrationClient`:

* baseline, the entity-signal path: `--count` signals (`add 1`) spread over `--keys` entities, sent
  by `--concurrency` concurrent clients; signals/s from the first signal until every one is applied
  and persisted, and per signal the latency from just before it is sent until the entity's
  committed state includes it (the host's committed state, read in memory every 5 ms);
* orchestrations: `--count` instances started by `--concurrency` concurrent clients, each calling
  the same entities; orchestrations/s from the first start until the last instance's `Completed`
  status is committed, and per instance the latency from just before its start request until then
  (in a burst, mostly time spent queued behind the others);
* latency at a fixed offered rate (`--rate` per s, `--paced` of each, after the bursts): a signal
  to a fresh entity until its state is committed, and an orchestration from its start request
  until `Completed` is committed.

Each orchestration is 5 episodes (start, 3 activity results, the entity's answer), each a replay of
the SDK's handler plus one Table transaction; activities and entity calls each add their own writes.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devhost import Azurite, DevHost  # noqa: E402
from devhost.config import DurableOptions, HostConfig  # noqa: E402

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.activity_trigger(input_name="value")
def square(value: int) -> int:
    return value * value


@app.orchestration_trigger(context_name="context")
def three_and_a_call(context: df.DurableOrchestrationContext) -> Any:
    key = context.get_input()
    a = yield context.call_activity("square", 2)
    b = yield context.call_activity("square", 3)
    c = yield context.call_activity("square", 4)
    total = yield context.call_entity(df.EntityId("tally", key), "add", a + b + c)
    return total


@app.entity_trigger(context_name="context")
def tally(context: df.DurableEntityContext) -> None:
    total = int(context.get_state(lambda: 0))
    if context.operation_name == "add":
        total += int(context.get_input())
        context.set_state(total)
    context.set_result(total)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def signals(
    host: DevHost, count: int, keys: int, concurrency: int
) -> tuple[float, list[float]]:
    client = df.DurableOrchestrationClient(host.client_binding())
    sent: dict[str, list[float]] = {f"s{k}": [] for k in range(keys)}
    latency: list[float] = []
    todo = iter(range(count))

    async def sender() -> None:
        for i in todo:
            key = f"s{i % keys}"
            sent[key].append(time.perf_counter())
            await client.signal_entity(df.EntityId("tally", key), "add", 1)

    async def watcher() -> None:
        seen = dict.fromkeys(sent, 0)
        while sum(seen.values()) < count:
            for key in sent:
                stored = await host.runtime.read("tally", key)
                total = int(json.loads(stored.state)) if stored.exists and stored.state else 0
                now = time.perf_counter()
                for j in range(seen[key], total):
                    latency.append((now - sent[key][j]) * 1000)
                seen[key] = max(seen[key], total)
            await asyncio.sleep(0.005)

    started = time.perf_counter()
    await asyncio.gather(watcher(), *(sender() for _ in range(concurrency)))
    return count / (time.perf_counter() - started), latency


async def orchestrations(
    host: DevHost, count: int, keys: int, concurrency: int
) -> tuple[float, list[float]]:
    client = df.DurableOrchestrationClient(host.client_binding())
    latency: list[float] = []
    todo = iter(range(count))

    async def one(i: int) -> None:
        began = time.perf_counter()
        instance = await client.start_new("three_and_a_call", f"bench-{i}", f"o{i % keys}")
        status = await host.orchestrations.wait_for(instance)
        if status != "Completed":
            raise RuntimeError(f"{instance} ended {status}")
        latency.append((time.perf_counter() - began) * 1000)

    async def starter() -> None:
        running: list[asyncio.Task[None]] = []
        for i in todo:
            running.append(asyncio.create_task(one(i)))
            await asyncio.sleep(0)
        await asyncio.gather(*running)

    started = time.perf_counter()
    async with asyncio.timeout(600):
        await asyncio.gather(*(starter() for _ in range(concurrency)))
    return count / (time.perf_counter() - started), latency


async def paced(host: DevHost, kind: str, count: int, rate: float, keys: int) -> list[float]:
    """Latency at a fixed offered rate: one signal or one orchestration every 1/rate seconds."""
    client = df.DurableOrchestrationClient(host.client_binding())
    latency: list[float] = []

    async def orchestration(i: int) -> None:
        began = time.perf_counter()
        instance = await client.start_new("three_and_a_call", f"paced-{i}", f"p{i % keys}")
        await host.orchestrations.wait_for(instance)
        latency.append((time.perf_counter() - began) * 1000)

    async def signal(i: int) -> None:
        key = f"q{i}"  # a fresh entity each: its first committed state is this signal's
        began = time.perf_counter()
        await client.signal_entity(df.EntityId("tally", key), "add", 1)
        while not (await host.runtime.read("tally", key)).exists:  # noqa: ASYNC110 (polled like a client)
            await asyncio.sleep(0.005)
        latency.append((time.perf_counter() - began) * 1000)

    run = orchestration if kind == "orchestration" else signal
    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(run(i)))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    return latency


async def main(args: argparse.Namespace) -> dict[str, Any]:
    config = HostConfig(
        durable=DurableOptions(
            hub_name="bench",
            max_entity_operation_batch_size=100,
            max_concurrent_orchestrator_functions=args.max_orchestrators,
            max_concurrent_activity_functions=args.max_activities,
        )
    )
    with Azurite() as azurite:
        async with DevHost(
            app, connection_string=azurite.connection_string, config=config, hub="BenchHub"
        ) as host:
            signal_rate, signal_ms = await signals(host, args.count, args.keys, args.concurrency)
            orch_rate, orch_ms = await orchestrations(host, args.count, args.keys, args.concurrency)
            episodes = host.orchestrations.episodes_run
            paced_signal = await paced(host, "signal", args.paced, args.rate, args.keys)
            paced_orch = await paced(host, "orchestration", args.paced, args.rate, args.keys)
    return {
        "count": args.count,
        "keys": args.keys,
        "concurrency": args.concurrency,
        "max_orchestrators": args.max_orchestrators,
        "max_activities": args.max_activities,
        "signals_per_s": round(signal_rate, 1),
        "signal_p50_ms": round(statistics.median(signal_ms), 1),
        "signal_p99_ms": round(percentile(signal_ms, 0.99), 1),
        "orchestrations_per_s": round(orch_rate, 1),
        "orchestration_p50_ms": round(statistics.median(orch_ms), 1),
        "orchestration_p99_ms": round(percentile(orch_ms, 0.99), 1),
        "episodes": episodes,
        "rate": args.rate,
        "paced_signal_p50_ms": round(statistics.median(paced_signal), 1),
        "paced_signal_p99_ms": round(percentile(paced_signal, 0.99), 1),
        "paced_orchestration_p50_ms": round(statistics.median(paced_orch), 1),
        "paced_orchestration_p99_ms": round(percentile(paced_orch, 0.99), 1),
    }


def report(result: dict[str, Any]) -> None:
    rows = [
        ("entity signals (baseline)", "signals_per_s", "signal_p50_ms", "signal_p99_ms"),
        (
            "orchestrations (3 act + call_entity)",
            "orchestrations_per_s",
            "orchestration_p50_ms",
            "orchestration_p99_ms",
        ),
    ]
    print(f"{'path':<38} {'per s':>8} {'p50 ms':>9} {'p99 ms':>9}")
    for label, rate, p50, p99 in rows:
        print(f"{label:<38} {result[rate]:>8} {result[p50]:>9} {result[p99]:>9}")
    print(
        f"at {result['rate']}/s offered: signal p50 {result['paced_signal_p50_ms']} ms, "
        f"p99 {result['paced_signal_p99_ms']} ms; orchestration p50 "
        f"{result['paced_orchestration_p50_ms']} ms, p99 {result['paced_orchestration_p99_ms']} ms"
    )
    print(
        f"{result['count']} of each (burst), {result['concurrency']} concurrent clients, "
        f"{result['keys']} entities, {result['episodes']} orchestrator episodes"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--keys", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=4.0, help="paced phase: starts per s")
    parser.add_argument("--paced", type=int, default=60, help="paced phase: how many of each")
    parser.add_argument("--max-orchestrators", type=int, default=10)
    parser.add_argument("--max-activities", type=int, default=10)
    logging.basicConfig(level=logging.WARNING)
    report(asyncio.run(main(parser.parse_args())))
