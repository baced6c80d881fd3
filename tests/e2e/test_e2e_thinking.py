"""Agents that think, under `python -m devhost` (app: tests/e2e/thinking_e2e_app.py): a message
becomes a turn -- an orchestration whose model steps are activities -- that calls tools, waits for
approval where a tool needs it, and answers. Agents with `adapter_name` "scripted" think with the
real `openai` client against a scripted OpenAI-compatible server on loopback (429 with
retry-after, 500, tool calls); the others with the offline model."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from process_host import HostProcess
from scripted_openai import Recorded, Scripted, ScriptedOpenAI

from devhost.azurite import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

TESTS = Path(__file__).resolve().parent.parent
DONE = {"completed", "failed"}


@pytest.fixture
def model() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as server:
        yield server


@pytest.fixture
def client(
    host_env: dict[str, str], tmp_path: Path, model: ScriptedOpenAI
) -> Iterator[httpx.Client]:
    root = tmp_path / "app"
    root.mkdir()
    shutil.copy(REPO_ROOT / "host.json", root / "host.json")
    env = {
        **host_env,
        "PYTHONPATH": f"{TESTS / 'e2e'}",
        "AOS_MODELS__scripted__API": "openai",
        "AOS_MODELS__scripted__ENDPOINT": model.base_url,
        "AOS_MODELS__scripted__DEPLOYMENT": "scripted-model",
        "AOS_MODELS__scripted__API_KEY": "test-key",
        "AOS_MODELS__scripted__TIMEOUT_SECONDS": "10",
        "AOS_MODELS__scripted__MAX_RETRIES": "3",
        "AOS_APPROVAL_TIMEOUT_SECONDS": "60",
    }
    host = HostProcess(
        env, tmp_path / "devhost.log", ["--root", str(root), "--app", "thinking_e2e_app"]
    )
    host.start()
    try:
        with httpx.Client(base_url=host.base_url, timeout=15.0) as http:
            yield http
    finally:
        host.stop()


def register(client: httpx.Client, agent_id: str, kind: str = "buyer", **spec: Any) -> None:
    body = {"agent_id": agent_id, "kind": kind, "purpose": "Keep the shop stocked", **spec}
    response = client.post("/api/agents", json=body)
    assert response.status_code == 201, response.text


def say(client: httpx.Client, agent_id: str, content: str, **extra: Any) -> dict[str, Any]:
    response = client.post(f"/api/agents/{agent_id}/messages", json={"content": content, **extra})
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    assert response.headers["location"] == accepted["status_url"]
    return accepted


def turn_until(
    client: httpx.Client, url: str, statuses: set[str], within: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = client.get(url)
        if response.status_code == 200 and response.json()["status"] in statuses:
            turn: dict[str, Any] = response.json()
            return turn
        assert response.status_code in (200, 404), response.text
        assert time.monotonic() < deadline, f"turn not {statuses}: {response.text}"
        time.sleep(0.1)


def test_a_tool_that_needs_approval_waits_then_runs_or_not(client: httpx.Client) -> None:
    register(client, "buyer")
    ordered = say(client, "buyer", "place_order item=widget quantity=3", message_id="order-1")
    waiting = turn_until(client, ordered["status_url"], {"waiting_approval"})
    assert waiting["waiting_for"]["name"] == "place_order"
    assert json.loads(waiting["waiting_for"]["arguments"]) == {"item": "widget", "quantity": 3}
    url = f"/api/agents/buyer/turns/{ordered['turn_id']}/approval"
    approved = client.post(url, json={"approve": True})
    assert approved.status_code == 202, approved.text
    done = turn_until(client, ordered["status_url"], DONE)
    assert done["status"] == "completed", done
    (call,) = done["tool_calls"]
    assert call["result"]["ordered"] == "widget"
    assert call["result"]["idempotency_key"] == f"{ordered['turn_id']}:1:0"
    assert done["offline"] is True
    assert done["model"] == "aos-offline"
    again = client.post(url, json={"approve": True})
    assert again.status_code == 409, again.text  # it waits for nothing now

    refused = say(client, "buyer", "place_order item=gold quantity=1000")
    turn_until(client, refused["status_url"], {"waiting_approval"})
    url = f"/api/agents/buyer/turns/{refused['turn_id']}/approval"
    assert client.post(url, json={"approve": False, "reason": "too pricey"}).status_code == 202
    done = turn_until(client, refused["status_url"], DONE)
    assert done["tool_calls"][0]["error"] == "refused: too pricey"

    # the same message id is the same turn; the agent shows its turns
    assert say(client, "buyer", "anything", message_id="order-1")["turn_id"] == ordered["turn_id"]
    turns = client.get("/api/agents/buyer").json()["turns"]
    assert turns["completed"] == 2
    assert turns["active"] is None
    assert [m["role"] for m in turns["conversation"]["messages"]][:2] == ["user", "assistant"]


def test_turn_routes_refuse_what_does_not_exist(client: httpx.Client) -> None:
    register(client, "buyer")
    missing = client.get("/api/agents/buyer/turns/turn-" + "0" * 32)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/agents/buyer/turns/nope").status_code == 400
    unknown = client.post("/api/agents/nobody/messages", json={"content": "hi"})
    assert unknown.status_code == 404
    empty = client.post("/api/agents/buyer/messages", json={"content": ""})
    assert empty.status_code == 400
    assert empty.json()["errors"][0]["pointer"] == "/body/content"


def test_an_event_of_a_type_the_kind_thinks_about_starts_a_turn(client: httpx.Client) -> None:
    register(client, "buyer")
    posted = client.post(
        "/api/agents/buyer/events", json={"type": "stock.low", "data": {"item": "widget"}}
    )
    assert posted.status_code == 202, posted.text
    deadline = time.monotonic() + 30
    while client.get("/api/agents/buyer").json()["turns"]["completed"] < 1:
        assert time.monotonic() < deadline, "the turn did not complete"
        time.sleep(0.1)
    history = client.get("/api/agents/buyer/history", params={"kind": "turn"}).json()["value"]
    assert history[0]["payload"]["prompt"].startswith("Event stock.low")


def test_the_openai_client_against_a_scripted_model(
    client: httpx.Client, model: ScriptedOpenAI
) -> None:
    """Throttled once (retry-after 1 s), a tool call, a 500, then the answer: the SDK retries
    as asked, the turn applies the tool once and completes."""
    model.add(
        Scripted.error(429, "slow down", headers={"retry-after": "1"}),
        Scripted.tools(
            ("update_state", '{"key": "mood", "value": "calm"}'),
            prompt_tokens=120,
            completion_tokens=20,
        ),
        Scripted.error(500, "oops"),
        Scripted.text("All set.", prompt_tokens=150, completion_tokens=5),
    )
    register(client, "thinker", kind="generic", adapter_name="scripted")
    accepted = say(client, "thinker", "Please be calm")
    done = turn_until(client, accepted["status_url"], DONE)
    assert done["status"] == "completed", done
    assert done["reply"] == "All set."
    assert (done["model"], done["offline"]) == ("scripted-model", False)
    assert done["usage"] == {"prompt_tokens": 270, "completion_tokens": 25, "total_tokens": 295}
    requests: list[Recorded] = model.requests
    assert len(requests) == 4
    assert requests[1].time - requests[0].time >= 0.95  # retry-after honoured
    assert {r.headers["authorization"] for r in requests} == {"Bearer test-key"}
    first = requests[0].body
    assert first["model"] == "scripted-model"
    assert "Purpose: Keep the shop stocked" in first["messages"][0]["content"]
    assert first["messages"][-1] == {"role": "user", "content": "Please be calm"}
    assert {t["function"]["name"] for t in first["tools"]} >= {"update_state", "send", "remind"}
    assert requests[3].body["messages"][-1]["role"] == "tool"
    assert client.get("/api/agents/thinker").json()["state"] == {"mood": "calm"}
    steps = client.get("/api/agents/thinker/history", params={"kind": "model_step"}).json()
    assert sorted(s["payload"]["step"] for s in steps["value"]) == [1, 2]


def test_a_model_that_refuses_fails_the_turn_visibly(
    client: httpx.Client, model: ScriptedOpenAI
) -> None:
    model.add(Scripted.error(400, "this model does not exist"))
    register(client, "thinker", kind="generic", adapter_name="scripted")
    done = turn_until(client, say(client, "thinker", "hello")["status_url"], DONE)
    assert done["status"] == "failed"
    assert "does not exist" in done["error"]
    assert model.count() == 1  # not retried: a 400 will not get better
    turns = client.get("/api/agents/thinker").json()["turns"]
    assert (turns["failed"], turns["active"]) == (1, None)
