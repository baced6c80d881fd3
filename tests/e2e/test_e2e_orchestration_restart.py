"""SIGKILL the host twice amid 200 orchestrations (activities, a durable timer, an entity call each).

The first kill comes while instances are being started and run their first activities, the second
once half the third activities ran (the poll lags under load: in practice 40-80 instances still had
their third activity or entity call to finish). After the last restart every instance completes;
every entity call was applied exactly once; an activity whose result was recorded before the kill
(its TaskCompleted in the instance's history or inbox) never runs again, and no timer fires twice.
Each execution of the activity appends a row to a marker table with the host's generation, so the
count of runs is exact; what was recorded at the kill is read from the host's table while no host
runs. An activity that ran but whose result was not yet recorded may run again (at-least-once).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.data.tables import TableClient
from process_host import HostProcess

from devhost.host import orchestrations_table_name
from devhost.orchestration_store import OrchestrationStore

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

TOTAL = 200
KILL_AT_RUNS = 120  # of 600 activity executions (the poll overshoots)
SECOND_KILL_AT = 100  # third steps run (of 200): entity calls follow them
DURABLE = "/runtime/webhooks/durabletask"
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "devhost"


def _host_json(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "host.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {
                    "durableTask": {
                        "hubName": "%AOS_TASK_HUB%",
                        "maxConcurrentActivityFunctions": 10,
                        "maxConcurrentOrchestratorFunctions": 10,
                    }
                },
            }
        )
    )


def _runs(connection: str, table: str, select: list[str] | None = None) -> list[dict[str, Any]]:
    with TableClient.from_connection_string(connection, table) as client:
        return [dict(r) for r in client.list_entities(select=select)]


def _third_steps(connection: str, table: str) -> int:
    with TableClient.from_connection_string(connection, table) as client:
        return len(list(client.query_entities("step eq 3", select=["RowKey"])))


async def _recorded(connection: str, table: str, ids: list[str]) -> dict[str, set[int]]:
    """Per instance, the steps whose result the host had stored (history or inbox)."""
    store = OrchestrationStore(connection, table)
    found: dict[str, set[int]] = {}
    try:
        for instance_id in ids:
            stored = await store.load(instance_id)
            if stored is None:
                continue
            step_of = {
                e["EventId"]: json.loads(e["Input"])["step"]
                for e in stored.history
                if e["EventType"] == 4
            }
            events = stored.history + [m.body["event"] for m in stored.inbox]
            found[instance_id] = {
                step_of[e["TaskScheduledId"]]
                for e in events
                if e["EventType"] == 5 and e["TaskScheduledId"] in step_of
            }
    finally:
        await store.close()
    return found


def _start(client: httpx.Client, instance_id: str) -> int:
    try:
        url = f"{DURABLE}/orchestrators/marked/{instance_id}"
        spread = 1.0 + 0.3 * (int(instance_id.rsplit("-", 1)[1]) % 10)  # completions spread out
        return client.post(url, json=json.dumps({"timer": spread})).status_code
    except httpx.TransportError:
        return 0


async def _completed(connection: str, table: str) -> int:
    store = OrchestrationStore(connection, table)
    try:
        return len([r async for r in store.instance_ids({"Completed"})])
    finally:
        await store.close()


def test_sigkill_twice_every_orchestration_completes_without_rerunning_recorded_work(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "app"
    _host_json(root)
    markers = host_env["AOS_HISTORY_TABLE"]
    env = {
        **host_env,
        "DEVHOST_MARKER_TABLE": markers,
        "DEVHOST_GENERATION": "1",
        "PYTHONPATH": str(SAMPLE_DIR),
    }
    connection = host_env["AzureWebJobsStorage"]
    with TableClient.from_connection_string(connection, markers) as tables:
        tables.create_table()
    args = ["--root", str(root), "--app", "orchestration_sample_app"]
    host = HostProcess(env, tmp_path / "devhost.log", args)
    ids = [f"marked-{n:03d}" for n in range(TOTAL)]
    began = time.monotonic()
    host.start(ready_path="/api/ready")
    try:
        with (
            httpx.Client(base_url=host.base_url, timeout=10.0) as client,
            ThreadPoolExecutor(4) as pool,
        ):
            # Kill while instances are still being started and their first activities run.
            starts = [pool.submit(_start, client, i) for i in ids]
            deadline = time.monotonic() + 60
            while len(_runs(connection, markers, ["RowKey"])) < KILL_AT_RUNS:
                assert time.monotonic() < deadline, f"no progress: {host.log()}"
                time.sleep(0.02)
            host.kill()
            unstarted = [i for i, f in zip(ids, starts, strict=True) if f.result() != 202]
        hub_table = orchestrations_table_name(host_env["AOS_TASK_HUB"])
        recorded = {1: asyncio.run(_recorded(connection, hub_table, ids))}
        kills = [len(_runs(connection, markers))]
        assert 0 < kills[0] < 3 * TOTAL, "the first kill came too late to test anything"

        # Second run, killed again once third steps and entity calls are under way.
        host.env = {**env, "DEVHOST_GENERATION": "2"}
        host.start(ready_path="/api/ready")
        with httpx.Client(base_url=host.base_url, timeout=10.0) as client:
            # A client whose start was not answered starts again: 202, or 409 if it was stored.
            assert {_start(client, i) for i in unstarted} <= {202, 409}
            deadline = time.monotonic() + 60
            while _third_steps(connection, markers) < SECOND_KILL_AT:
                assert time.monotonic() < deadline, f"no progress: {host.log()}"
                time.sleep(0.02)
            host.kill()
        recorded[2] = asyncio.run(_recorded(connection, hub_table, ids))
        completed_at_second_kill = asyncio.run(_completed(connection, hub_table))
        kills.append(len(_runs(connection, markers)))

        host.env = {**env, "DEVHOST_GENERATION": "3"}
        host.start(ready_path="/api/ready")
        with httpx.Client(base_url=host.base_url, timeout=10.0) as client:
            deadline = time.monotonic() + 90
            while True:
                done = client.get(f"{DURABLE}/instances", params={"runtimeStatus": "Completed"})
                if len(done.json()) == TOTAL:
                    break
                assert time.monotonic() < deadline, f"not all completed: {host.log()}"
                time.sleep(0.2)
            statuses = [
                client.get(f"{DURABLE}/instances/{i}", params={"showHistory": "true"}).json()
                for i in ids
            ]
            tallies = [client.get(f"{DURABLE}/entities/tally/{i}").json() for i in ids]
    finally:
        host.stop()
    elapsed = time.monotonic() - began

    assert all(s["output"] == 1111 for s in statuses)
    assert tallies == [1] * TOTAL  # each entity call applied exactly once
    for status in statuses:
        kinds = Counter(e["EventType"] for e in status["historyEvents"])
        assert kinds["TimerCreated"] == kinds["TimerFired"] == 1, status["instanceId"]
        assert kinds["TaskCompleted"] == 3

    runs = Counter(
        (r["PartitionKey"], int(r["step"]), int(r["generation"]))
        for r in _runs(connection, markers)
    )
    for instance_id in ids:
        for step in (1, 2, 3):
            per_run = [runs[(instance_id, step, gen)] for gen in (1, 2, 3)]
            assert sum(per_run) >= 1, (instance_id, step)
            assert max(per_run) <= 1, (instance_id, step, per_run)  # never twice in one run
            for killed, snapshot in recorded.items():
                if step in snapshot.get(instance_id, set()):
                    later = per_run[killed:]
                    assert not any(later), f"{instance_id} step {step} was recorded, then ran"
    reruns = sum(n for (_, _, gen), n in runs.items() if gen > 1) - (3 * TOTAL - kills[0])
    print(
        f"\n{TOTAL} orchestrations ({len(unstarted)} starts unanswered), killed after {kills[0]}"
        f" and {kills[1]} activity runs ({completed_at_second_kill} instances completed then);"
        f" {reruns} unrecorded runs repeated; {elapsed:.1f}s"
    )
    assert elapsed < 120
