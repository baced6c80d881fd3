"""SIGKILL the local host while ten agents think (three model steps each, two of them tool calls):
after a restart every turn completes, each tool call was applied once, and no model step whose
reply the host had recorded (its TaskCompleted in the turn's history or inbox) is asked of the
model again -- the scripted model server counts the requests per agent and step. A step that was
asked but not recorded when the host died may be asked again (activities run at least once)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
from process_host import HostProcess
from scripted_openai import Recorded, Scripted, ScriptedOpenAI

from devhost.azurite import REPO_ROOT
from devhost.host import orchestrations_table_name
from devhost.orchestration_store import OrchestrationStore

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

TESTS = Path(__file__).resolve().parent.parent
AGENTS = [f"thinker-{n}" for n in range(10)]
KILL_AFTER_REQUESTS = 14
TASK_SCHEDULED, TASK_COMPLETED = 4, 5


def agent_and_step(request: Recorded) -> tuple[str, int]:
    messages = request.body["messages"]
    agent = re.search(r"You are agent (\S+),", messages[0]["content"])
    assert agent is not None
    return agent.group(1), 1 + sum(1 for m in messages if m["role"] == "assistant")


def key(request: Recorded) -> str:
    agent, step = agent_and_step(request)
    return f"{agent}:{step}"


def respond(request: Recorded) -> Scripted:
    """Each agent's turn: two tool calls, one step each, then the answer; a little slow, so the
    kill finds turns at every stage."""
    agent, step = agent_and_step(request)
    if step <= 2:
        arguments = json.dumps({"key": f"s{step}", "value": agent})
        return Scripted.tools(("update_state", arguments), delay=0.3)
    return Scripted.text(f"done {agent}", delay=0.3)


async def recorded_steps(connection: str, table: str, turn_ids: list[str]) -> dict[str, set[int]]:
    """Per turn, the model steps whose reply the host had stored when it died."""
    store = OrchestrationStore(connection, table)
    found: dict[str, set[int]] = {}
    try:
        for turn_id in turn_ids:
            stored = await store.load(turn_id)
            if stored is None:
                continue
            step_of = {
                e["EventId"]: json.loads(e["Input"])["step"]
                for e in stored.history
                if e["EventType"] == TASK_SCHEDULED and e.get("Name") == "aos_model_step"
            }
            events = stored.history + [m.body["event"] for m in stored.inbox]
            found[turn_id] = {
                step_of[e["TaskScheduledId"]]
                for e in events
                if e["EventType"] == TASK_COMPLETED and e["TaskScheduledId"] in step_of
            }
    finally:
        await store.close()
    return found


def test_sigkill_amid_turns_every_turn_completes_and_no_recorded_step_is_asked_again(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "app"
    root.mkdir()
    shutil.copy(REPO_ROOT / "host.json", root / "host.json")
    with ScriptedOpenAI(responder=respond, key=key) as model:
        env = {
            **host_env,
            "AOS_MODELS__default__API": "openai",
            "AOS_MODELS__default__ENDPOINT": model.base_url,
            "AOS_MODELS__default__DEPLOYMENT": "scripted-model",
            "AOS_MODELS__default__API_KEY": "test-key",
        }
        host = HostProcess(env, tmp_path / "devhost.log", ["--root", str(root)])
        host.start()
        try:
            with httpx.Client(base_url=host.base_url, timeout=15.0) as client:
                for agent in AGENTS:
                    body = {"agent_id": agent, "purpose": "Remember what it is told"}
                    assert client.post("/api/agents", json=body).status_code == 201
                turns = {}
                for agent in AGENTS:
                    answer = client.post(
                        f"/api/agents/{agent}/messages", json={"content": "remember"}
                    )
                    assert answer.status_code == 202, answer.text
                    turns[agent] = answer.json()["turn_id"]
                deadline = time.monotonic() + 60
                while model.count() < KILL_AFTER_REQUESTS:
                    assert time.monotonic() < deadline, f"no progress: {host.log()}"
                    time.sleep(0.02)
                host.kill()
            asked_before_kill = model.count()
            table = orchestrations_table_name(host_env["AOS_TASK_HUB"])
            connection = host_env["AzureWebJobsStorage"]
            recorded = asyncio.run(recorded_steps(connection, table, list(turns.values())))

            host.start()
            with httpx.Client(base_url=host.base_url, timeout=15.0) as client:
                deadline = time.monotonic() + 90
                outcomes = {}
                for agent, turn_id in turns.items():
                    while True:
                        response = client.get(f"/api/agents/{agent}/turns/{turn_id}")
                        if response.status_code == 200 and response.json()["status"] in (
                            "completed",
                            "failed",
                        ):
                            outcomes[agent] = response.json()
                            break
                        assert time.monotonic() < deadline, f"{agent}: {response.text}"
                        time.sleep(0.1)
                states = {a: client.get(f"/api/agents/{a}").json()["state"] for a in AGENTS}
        finally:
            host.stop()

        assert all(o["status"] == "completed" for o in outcomes.values()), outcomes
        assert {a: o["reply"] for a, o in outcomes.items()} == {a: f"done {a}" for a in AGENTS}
        assert states == {a: {"s1": a, "s2": a} for a in AGENTS}  # each tool call applied once
        assert sum(len(steps) for steps in recorded.values()) > 0, "killed before any record"
        for agent, turn_id in turns.items():
            for step in (1, 2, 3):
                asked = model.count(f"{agent}:{step}")
                assert asked >= 1, (agent, step)
                if step in recorded.get(turn_id, set()):
                    assert asked == 1, f"{agent} step {step} was recorded, then asked again"
        repeated = model.count() - 3 * len(AGENTS)
        print(
            f"\nkilled after {asked_before_kill} model requests, "
            f"{sum(len(s) for s in recorded.values())} steps recorded then; "
            f"{repeated} unrecorded steps asked again"
        )
