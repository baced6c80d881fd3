"""Agents that act, under `python -m devhost` (the app: tests/e2e/acting_e2e_app.py): a leader
delegating a goal by `send`, a `publish` reaching its subscribers once, and two agents answering
each other forever stopped by the hop limit and dead-lettered. Every effect leaves its entity's
batch through the entity function's post-batch step, onto the real events queue in Azurite."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aos_e2e_support import counters_of, wait_for, wait_for_quiet
from process_host import HostProcess

from devhost.azurite import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

TESTS = Path(__file__).resolve().parent.parent
MAX_HOPS = 3


@pytest.fixture
def client(host_env: dict[str, str], tmp_path: Path) -> Iterator[httpx.Client]:
    root = tmp_path / "app"
    root.mkdir()
    shutil.copy(REPO_ROOT / "host.json", root / "host.json")
    env = {**host_env, "AOS_MAX_HOPS": str(MAX_HOPS), "PYTHONPATH": str(TESTS / "e2e")}
    host = HostProcess(
        env, tmp_path / "devhost.log", ["--root", str(root), "--app", "acting_e2e_app"]
    )
    host.start()
    try:
        with httpx.Client(base_url=host.base_url, timeout=15.0) as http:
            yield http
    finally:
        host.stop()


def register(client: httpx.Client, agent_id: str, kind: str, **spec: Any) -> None:
    body = {"agent_id": agent_id, "kind": kind, "purpose": "Grow revenue in Europe", **spec}
    response = client.post("/api/agents", json=body)
    assert response.status_code == 201, response.text


def history(client: httpx.Client, agent_id: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/agents/{agent_id}/history", params={"limit": "100", **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["value"]
    return items


def handled(client: httpx.Client, agent_id: str) -> int:
    return counters_of(client, agent_id)["events_handled"]


def test_a_leader_delegates_a_goal_to_another_agent_by_send(
    client: httpx.Client, host_env: dict[str, str]
) -> None:
    register(client, "ceo", "delegating-leader")
    register(client, "cto", "leadership")
    proposal = {"description": "Grow revenue in Europe", "delegate_to": "cto"}
    sent = client.post(
        "/api/agents/ceo/events",
        json={"event_id": "plan-1", "type": "goal.proposed", "data": proposal},
    )
    assert sent.status_code == 202, sent.text

    goals = wait_for(
        lambda: client.get("/api/agents/cto/goals").json().get("value"), "the delegated goal"
    )
    assert [g["description"] for g in goals] == ["Grow revenue in Europe"]
    (record,) = wait_for(lambda: history(client, "ceo", kind="send"), "the send in history")
    assert record["event_id"] == "plan-1"  # the causing event
    assert (record["payload"]["agent_id"], record["payload"]["hops"]) == ("cto", 1)
    (received,) = history(client, "cto", kind="event")
    assert received["event_id"] == record["payload"]["event_id"]
    assert received["payload"]["source"] == "ceo"
    wait_for_quiet(host_env, "cto")
    assert handled(client, "cto") == 1


def test_a_publish_reaches_each_subscriber_once(
    client: httpx.Client, host_env: dict[str, str]
) -> None:
    register(client, "herald", "herald")
    for agent_id in ("reader-1", "reader-2"):
        register(client, agent_id, "generic", subscriptions=["news"])
    register(client, "bystander", "generic", subscriptions=["weather"])
    for _ in range(2):  # the same event twice: published once
        posted = client.post(
            "/api/agents/herald/events",
            json={"event_id": "scoop-1", "type": "announce", "data": {"headline": "AOS acts"}},
        )
        assert posted.status_code == 202, posted.text
    for agent_id in ("reader-1", "reader-2"):

        def news_of(reader: str = agent_id) -> list[dict[str, Any]]:
            return history(client, reader, kind="event")

        (news,) = wait_for(news_of, f"{agent_id}'s news")
        assert (news["type"], news["payload"]["data"]) == ("news", {"headline": "AOS acts"})
    for agent_id in ("herald", "reader-1", "reader-2", "bystander"):
        wait_for_quiet(host_env, agent_id)
    assert [handled(client, a) for a in ("reader-1", "reader-2", "bystander")] == [1, 1, 0]
    assert [r["kind"] for r in history(client, "herald")] == ["event", "publish"]


def test_agents_answering_each_other_forever_are_stopped_by_the_hop_limit(
    client: httpx.Client, host_env: dict[str, str]
) -> None:
    register(client, "ping", "echo")
    register(client, "pong", "echo")
    posted = client.post(
        "/api/agents/ping/events", json={"event_id": "serve", "type": "ping", "source": "pong"}
    )
    assert posted.status_code == 202, posted.text

    def hop_letters() -> list[dict[str, Any]]:
        letters = client.get("/api/deadletters").json()["value"]
        return [x for x in letters if "hop limit" in x["reason"]]

    (letter,) = wait_for(hop_letters, "the dead-lettered answer")
    assert letter["agent_id"] in ("ping", "pong")
    for agent_id in ("ping", "pong"):
        wait_for_quiet(host_env, agent_id)
    # hops 0..MAX_HOPS were delivered, alternating; the next one was dead-lettered instead
    assert handled(client, "ping") + handled(client, "pong") == MAX_HOPS + 1
    assert len(hop_letters()) == 1
