"""Turns under the local host, against bare calls to the same scripted model, in one run.

Run (it starts Azurite, so serialise with other Azurite users on shared machines):

    flock /tmp/aos-azurite.lock .venv/bin/python bench/turn_throughput.py

It starts a scripted OpenAI-compatible server on loopback (tests/scripted_openai.py: every turn is
two model steps -- a tool call of ``update_state``, then the answer -- each answered after
``--model-ms``), its own Azurite, and the AOS app (``function_app.py``) under
``python -m devhost --no-azurite`` with ``AOS_MODELS__default__*`` pointing at the server. Then:

* baseline, bare model calls: the same two requests per turn made with the ``openai`` client
  (``aos.adapters.models.OpenAIChatModel``, the adapter the activity uses) by ``--concurrency``
  concurrent callers; pairs/s and the latency of one pair;
* turns: ``--turns`` messages to ``--agents`` agents (``POST …/messages``), sent by
  ``--concurrency`` concurrent clients, each polling its turn until ``completed``; turns/s from the
  first POST to the last completion, and per turn the latency from its POST to the first GET that
  shows it completed (polled every 50 ms: the polls load the host too);
* paced: ``--paced`` turns at half the measured rate, one agent each, for latency without a queue.

A turn is one orchestration (5 episodes: start, 2 model steps, 2 entity calls ... replayed each
time), 2 activities, 3 entity operations (``begin_turn``, ``apply_turn_step`` twice; ``end_turn``)
plus the message's own path (queue, delivery, ``handle_event``) and the control messages that
start and wake it. The per-turn overhead is the paced latency minus the bare pair's.

Prints a table and one JSON line; the devhost's log goes to bench/results/turns_devhost.log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from e2e_throughput import wait_up  # noqa: E402
from scripted_openai import Recorded, Scripted, ScriptedOpenAI  # noqa: E402

from aos.adapters.models import OpenAIChatModel  # noqa: E402
from aos.settings import ModelProfile  # noqa: E402
from devhost.azurite import Azurite, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def responder(delay: float) -> Any:
    def respond(request: Recorded) -> Scripted:
        messages = request.body["messages"]
        if any(m["role"] == "tool" for m in messages):
            return Scripted.text("noted", delay=delay, prompt_tokens=200, completion_tokens=2)
        arguments = json.dumps({"key": "last", "value": messages[-1]["content"]})
        return Scripted.tools(("update_state", arguments), delay=delay, prompt_tokens=180)

    return respond


async def bare_calls(base_url: str, pairs: int, concurrency: int) -> tuple[float, list[float]]:
    """The model calls of ``pairs`` turns with nothing around them."""
    profile = ModelProfile(
        name="default", api="openai", endpoint=base_url, deployment="bench", api_key="k"
    )
    model = OpenAIChatModel(profile)
    latency: list[float] = []
    todo = iter(range(pairs))
    first = [{"role": "system", "content": "bench"}, {"role": "user", "content": "hello"}]

    async def caller() -> None:
        for _ in todo:
            began = time.perf_counter()
            reply = await model.complete(first, ())
            follow = [*first, reply.assistant_message()]
            follow += [
                {"role": "tool", "tool_call_id": c.id, "content": "{}"} for c in reply.tool_calls
            ]
            await model.complete(follow, ())
            latency.append((time.perf_counter() - began) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    rate = pairs / (time.perf_counter() - started)
    await model.close()
    return rate, latency


async def one_turn(client: httpx.AsyncClient, agent: str, n: int) -> float:
    began = time.perf_counter()
    answer = await client.post(f"/api/agents/{agent}/messages", json={"content": f"m{n}"})
    answer.raise_for_status()
    url = answer.json()["status_url"]
    while True:
        status = await client.get(url)
        if status.status_code == 200 and status.json()["status"] in ("completed", "failed"):
            if status.json()["status"] != "completed":
                raise RuntimeError(status.text)
            return (time.perf_counter() - began) * 1000
        await asyncio.sleep(0.05)


async def turns(
    client: httpx.AsyncClient, count: int, agents: int, concurrency: int
) -> tuple[float, list[float]]:
    latency: list[float] = []
    todo = iter(range(count))

    async def sender() -> None:
        for n in todo:
            latency.append(await one_turn(client, f"bench-{n % agents}", n))

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return count / (time.perf_counter() - started), latency


async def paced(client: httpx.AsyncClient, count: int, rate: float) -> list[float]:
    tasks = []
    for n in range(count):
        tasks.append(asyncio.create_task(one_turn(client, f"paced-{n}", n)))
        await asyncio.sleep(1 / rate)
    return list(await asyncio.gather(*tasks))


async def drive(
    args: argparse.Namespace, port: int, process: subprocess.Popen[bytes]
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        await wait_up(client, process)
        names = [f"bench-{a}" for a in range(args.agents)]
        names += [f"paced-{n}" for n in range(args.paced)] + ["warm"]
        for name in names:
            body = {"agent_id": name, "purpose": "Remember what it is told"}
            (await client.post("/api/agents", json=body)).raise_for_status()
        await one_turn(client, "warm", 0)  # imports, clients, tables
        rate, latency = await turns(client, args.turns, args.agents, args.concurrency)
        paced_rate = args.rate or max(0.5, round(rate / 2, 1))
        paced_ms = await paced(client, args.paced, paced_rate)
    return {"rate": rate, "latency": latency, "paced_rate": paced_rate, "paced": paced_ms}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with ScriptedOpenAI(responder=responder(args.model_ms / 1000)) as model, Azurite() as azurite:
        bare_rate, bare_ms = asyncio.run(bare_calls(model.base_url, args.turns, args.concurrency))
        port = free_port()
        env = {
            **os.environ,
            "AzureWebJobsStorage": azurite.connection_string,
            "AOS_TASK_HUB": f"Bench{uuid.uuid4().hex[:8]}",
            "AOS_MODELS__default__API": "openai",
            "AOS_MODELS__default__ENDPOINT": model.base_url,
            "AOS_MODELS__default__DEPLOYMENT": "bench",
            "AOS_MODELS__default__API_KEY": "k",
        }
        RESULTS.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "devhost", "--no-azurite", "--port", str(port)]
        with (RESULTS / "turns_devhost.log").open("wb") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                measured = asyncio.run(drive(args, port, process))
            finally:
                process.terminate()
                process.wait(20)
        requests = model.count()
    bare_p50 = statistics.median(bare_ms)
    paced_p50 = statistics.median(measured["paced"])
    return {
        "cores": os.cpu_count(),
        "turns": args.turns,
        "agents": args.agents,
        "concurrency": args.concurrency,
        "model_ms": args.model_ms,
        "bare_pairs_per_s": round(bare_rate, 1),
        "bare_pair_p50_ms": round(bare_p50, 1),
        "turns_per_s": round(measured["rate"], 2),
        "ratio_turns_to_bare": round(measured["rate"] / bare_rate, 3),
        "turn_p50_ms": round(statistics.median(measured["latency"]), 1),
        "turn_p99_ms": round(percentile(measured["latency"], 0.99), 1),
        "paced_rate": measured["paced_rate"],
        "paced_p50_ms": round(paced_p50, 1),
        "paced_p99_ms": round(percentile(measured["paced"], 0.99), 1),
        "overhead_per_turn_ms": round(paced_p50 - bare_p50, 1),
        "model_requests": requests,
    }


def report(result: dict[str, Any]) -> None:
    print(f"{'path':<34} {'per s':>8} {'p50 ms':>9} {'p99 ms':>9}")
    print(f"{'bare model calls (2 per turn)':<34} {result['bare_pairs_per_s']:>8} "
          f"{result['bare_pair_p50_ms']:>9} {'':>9}")  # fmt: skip
    print(f"{'turns (burst)':<34} {result['turns_per_s']:>8} {result['turn_p50_ms']:>9} "
          f"{result['turn_p99_ms']:>9}")  # fmt: skip
    print(f"{'turns at ' + str(result['paced_rate']) + '/s':<34} {'':>8} "
          f"{result['paced_p50_ms']:>9} {result['paced_p99_ms']:>9}")  # fmt: skip
    print(
        f"turns/s ÷ bare pairs/s: {result['ratio_turns_to_bare']}; per-turn overhead "
        f"(paced p50 - bare p50): {result['overhead_per_turn_ms']} ms; "
        f"{result['model_requests']} model requests"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model-ms", type=float, default=50.0, help="the model's reply delay")
    parser.add_argument("--paced", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.0, help="paced turns/s (0: half the burst)")
    report(measure(parser.parse_args()))
