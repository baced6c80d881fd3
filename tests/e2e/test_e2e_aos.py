"""The AOS app as a real process over real HTTP: `python -m devhost --no-azurite` over Azurite.

Each test starts the host with its own task hub, queues and tables (`host_env`) and drives it with
httpx only, so routing, the HTTP server, the queue trigger's polling, the Durable HTTP API and the
entity store are all the real ones. Events are asynchronous, so effects are awaited by bounded
polling of `GET /api/agents/{id}`; nothing asserts on timing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aos_e2e_support import (
    PROBLEM_JSON,
    aos_host,
    context_of,
    counters_of,
    peek_json,
    queue_client,
    wait_for,
    wait_for_events,
    wait_for_quiet,
)

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

CFO = {
    "agent_id": "cfo",
    "purpose": "Keep the company financially healthy",
    "purpose_scope": "Budgets, cash flow, pricing",
    "success_criteria": ["Positive cash flow"],
    "subscriptions": ["market.update", "invoice.paid"],
}


@pytest.fixture
def client(host_env: dict[str, str], tmp_path: Path) -> Iterator[httpx.Client]:
    with (
        aos_host(host_env, tmp_path / "devhost.log") as host,
        httpx.Client(base_url=host.base_url, timeout=15.0) as http,
    ):
        yield http


def listed_ids(client: httpx.Client) -> list[str]:
    response = client.get("/api/agents", params={"limit": "200"})
    assert response.status_code == 200
    return sorted(a["agent_id"] for a in response.json()["value"])


def test_register_configure_and_deliver_events(
    client: httpx.Client, host_env: dict[str, str]
) -> None:
    created = client.post("/api/agents", json=CFO)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active"
    assert created.headers["location"].endswith("/api/agents/cfo")
    again = client.post("/api/agents", json={**CFO, "purpose": "Something else"})
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM_JSON

    put_new = client.put("/api/agents/support", json={"purpose": "Resolve tickets politely"})
    assert put_new.status_code == 201, put_new.text
    put_again = client.put(
        "/api/agents/support", json={"kind": "leadership", "purpose": "Resolve tickets fast"}
    )
    assert put_again.status_code == 200, put_again.text
    support = context_of(client, "support")
    assert (support["kind"], support["purpose"]) == ("leadership", "Resolve tickets fast")
    assert listed_ids(client) == ["cfo", "support"]

    patched = client.patch("/api/agents/cfo", json={"purpose": "Keep the company solvent"})
    assert patched.status_code == 200, patched.text
    spec = context_of(client, "cfo")
    assert spec["purpose"] == "Keep the company solvent"
    assert spec["purpose_scope"] == "Budgets, cash flow, pricing"  # untouched

    goal = client.post("/api/agents/cfo/goals", json={"id": "runway", "description": "24 months"})
    assert goal.status_code == 201, goal.text
    changed = client.patch("/api/agents/cfo/goals/runway", json={"status": "in_progress"})
    assert changed.status_code == 200
    assert client.get("/api/agents/cfo/goals/runway").json()["status"] == "in_progress"
    assert [g["id"] for g in client.get("/api/agents/cfo/goals").json()["value"]] == ["runway"]
    assert [g["id"] for g in context_of(client, "cfo")["goals"]] == ["runway"]
    assert client.delete("/api/agents/cfo/goals/runway").status_code == 204
    assert client.get("/api/agents/cfo/goals/runway").status_code == 404
    assert context_of(client, "cfo")["goals"] == []

    for i in range(1, 6):
        accepted = client.post(
            "/api/agents/cfo/events",
            json={"event_id": f"inv-{i}", "type": "invoice.paid", "data": {"amount": i}},
            headers={"x-correlation-id": f"corr-{i}"},
        )
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["event_id"] == f"inv-{i}"
        assert accepted.headers["x-correlation-id"] == f"corr-{i}"
    for name, url in accepted.json()["links"].items():  # every link in the answer resolves
        assert client.get(url).status_code == 200, (name, url)
    context = wait_for_events(client, "cfo", 5)
    assert context["counters"]["events_handled"] == 5
    assert {e["event_id"] for e in context["recent_events"]} == {f"inv-{i}" for i in range(1, 6)}
    last = context["last_event"]
    assert (last["type"], last["correlation_id"]) == (
        "invoice.paid",
        f"corr-{last['data']['amount']}",
    )

    # The same event_id again is accepted (retries are safe) and not applied a second time. Once
    # the queue is empty and no signal is pending, the duplicate has been dealt with (skipped by the
    # delivery or counted in `duplicates_ignored` by the agent): the count is final.
    duplicate = client.post("/api/agents/cfo/events", json={"event_id": "inv-3", "type": "x.y"})
    assert duplicate.status_code == 202
    wait_for_quiet(host_env, "cfo")
    counters = counters_of(client, "cfo")
    assert counters["events_handled"] == 5
    assert counters["duplicates_ignored"] <= 1


def test_decision_requests_are_recorded(client: httpx.Client) -> None:
    assert client.post("/api/agents", json=CFO).status_code == 201
    options = ["cut the marketing budget", "improve cash flow by invoicing faster"]
    response = client.post(
        "/api/agents/cfo/events",
        json={"event_id": "d-1", "type": "decision.requested", "data": {"options": options}},
    )
    assert response.status_code == 202
    context = wait_for_events(client, "cfo", 1)
    (decision,) = context["recent_decisions"]
    assert decision["chosen"] == "improve cash flow by invoicing faster"  # serves the purpose
    assert context["counters"]["decisions_made"] == 1


def test_broadcast_reaches_only_subscribers(client: httpx.Client) -> None:
    for agent_id, subscriptions in [
        ("s1", ["market.update"]),
        ("s2", ["*"]),
        ("other", ["weather.changed"]),
        ("silent", []),
    ]:
        body = {"agent_id": agent_id, "purpose": "Watch the market", "subscriptions": subscriptions}
        assert client.post("/api/agents", json=body).status_code == 201
    published = client.post(
        "/api/events", json={"event_id": "m-1", "type": "market.update", "data": {"index": "up"}}
    )
    assert published.status_code == 202, published.text
    assert published.json()["subscribers"] == 2
    for agent_id in ("s1", "s2"):
        last = wait_for_events(client, agent_id, 1)["last_event"]
        assert (last["event_id"], last["data"]) == ("m-1", {"index": "up"})
    # Both subscribers show it, so the broadcast's delivery is complete: the others never get it.
    assert counters_of(client, "other")["events_handled"] == 0
    assert counters_of(client, "silent")["events_handled"] == 0
    # ...and `other` does handle an event addressed to it.
    direct = client.post("/api/agents/other/events", json={"event_id": "w-1", "type": "weather.x"})
    assert direct.status_code == 202
    other = wait_for_events(client, "other", 1)
    assert [e["event_id"] for e in other["recent_events"]] == ["w-1"]


def test_deregister(client: httpx.Client) -> None:
    assert client.post("/api/agents", json=CFO).status_code == 201
    assert client.delete("/api/agents/cfo").status_code == 204
    gone = client.get("/api/agents/cfo")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == PROBLEM_JSON
    assert listed_ids(client) == []
    assert client.delete("/api/agents/cfo").status_code == 404
    assert client.post("/api/agents/cfo/events", json={"type": "t"}).status_code == 404
    assert client.post("/api/events", json={"type": "invoice.paid"}).json()["subscribers"] == 0
    assert client.post("/api/agents", json=CFO).status_code == 201  # the id is free again
    assert counters_of(client, "cfo")["events_handled"] == 0


JSON = {"content-type": "application/json"}
MALFORMED: list[tuple[str, str, bytes, dict[str, str], int]] = [
    ("POST", "/api/agents", b"{not json", JSON, 400),
    ("POST", "/api/agents", b'{"agent_id": "x1", "purpose": "p", "colour": "red"}', JSON, 400),
    ("POST", "/api/agents", b'{"agent_id": "bad id!", "purpose": "p"}', JSON, 400),
    ("POST", "/api/agents", b'{"agent_id": "x1", "purpose": "p"}', {"content-type": "text/plain"}, 415),
    ("POST", "/api/agents", b'{"agent_id": "x1", "purpose": "' + b"p" * 70_000 + b'"}', JSON, 413),
    ("PUT", "/api/agents/-x", b'{"purpose": "p"}', JSON, 400),
    ("PUT", "/api/agents/x1", b'{"purpose": "p", "extra": 1}', JSON, 400),
    ("PATCH", "/api/agents/cfo", b'{"purpose": "p", "kind": "leadership"}', JSON, 400),
    ("PATCH", "/api/agents/cfo", b"[]", JSON, 400),
    ("PATCH", "/api/agents/cfo", b'{"purpose": "p"}', {"content-type": "text/plain"}, 415),
    ("GET", "/api/agents/" + "x" * 65, b"", {}, 400),
    ("POST", "/api/agents/cfo/goals", b'{"description": "d", "progress": 2}', JSON, 400),
    ("POST", "/api/agents/cfo/goals", b'{"description": "d", "owner": "me"}', JSON, 400),
    ("POST", "/api/agents/cfo/events", b'{"type": "no spaces allowed"}', JSON, 400),
    ("POST", "/api/agents/cfo/events", b'{"type": "t", "agent_id": "support"}', JSON, 400),
    ("POST", "/api/agents/cfo/events", b'{"type": "t"', JSON, 400),
    ("POST", "/api/agents/cfo/events", b'{"type": "t"}', {"content-type": "text/plain"}, 415),
    ("POST", "/api/agents/cfo/events", b'{"type": "t", "data": "' + b"x" * 70_000 + b'"}', JSON, 413),
    ("POST", "/api/agents/cfo/events", b'{"type": "t", "data": "' + b"x" * 65_400 + b'"}', JSON, 413),
    ("POST", "/api/agents/-cfo/events", b'{"type": "t"}', JSON, 400),
    ("POST", "/api/events", b'{"type": "invoice.paid", "extra": true}', JSON, 400),
    ("POST", "/api/events", b"not json", JSON, 400),
]  # fmt: skip


def test_malformed_requests_are_problems_and_write_nothing(
    client: httpx.Client, host_env: dict[str, str]
) -> None:
    assert client.post("/api/agents", json=CFO).status_code == 201
    before = context_of(client, "cfo")
    for method, path, body, headers, status in MALFORMED:
        response = client.request(method, path, content=body, headers=headers)
        case = f"{method} {path} {body[:60]!r}"
        assert response.status_code == status, f"{case}: {response.text[:300]}"
        assert response.headers["content-type"] == PROBLEM_JSON, case
        problem: dict[str, Any] = response.json()
        assert problem["status"] == status, case
        assert problem["type"].startswith("urn:aos:problem:"), case
    assert listed_ids(client) == ["cfo"]
    assert client.get("/api/agents/x1").status_code == 404
    # Nothing reached the events queue: a sentinel posted after the failures is the only event the
    # agent ever handles, and nothing was dead-lettered.
    sentinel = client.post("/api/agents/cfo/events", json={"event_id": "ok-1", "type": "t"})
    assert sentinel.status_code == 202
    after = wait_for_events(client, "cfo", 1)
    assert after["counters"]["events_handled"] == 1
    assert [e["event_id"] for e in after["recent_events"]] == ["ok-1"]
    spec_fields = ("purpose", "purpose_scope", "success_criteria", "subscriptions", "kind")
    assert [after[f] for f in spec_fields] == [before[f] for f in spec_fields]
    assert after["goals"] == before["goals"]
    storage = host_env["AzureWebJobsStorage"]
    assert peek_json(storage, host_env["AOS_DEADLETTER_QUEUE"]) == []


def test_malformed_queue_messages_are_dead_lettered(
    client: httpx.Client, host_env: dict[str, str]
) -> None:
    assert client.post("/api/agents", json=CFO).status_code == 201
    storage = host_env["AzureWebJobsStorage"]
    ghost = {"version": 1, "target": "agent", "event": {"agent_id": "ghost", "type": "t"}}
    texts = {
        "not json at all": "not a valid AOS event envelope",
        json.dumps(ghost): "'ghost' is not registered",
        json.dumps({"version": 1, "target": "agent", "event": {"type": "t"}}): "agent_id",
    }
    with queue_client(storage, host_env["AOS_EVENTS_QUEUE"]) as events:
        for text in texts:
            events.send_message(text)

    def letters() -> list[dict[str, Any]]:
        found = peek_json(storage, host_env["AOS_DEADLETTER_QUEUE"])
        return found if len(found) >= len(texts) else []

    dead = wait_for(letters, "the dead letters")
    assert len(dead) == len(texts)
    by_original = {letter["original"]: letter for letter in dead}
    assert set(by_original) == set(texts)
    for text, reason in texts.items():
        letter = by_original[text]
        explained = [letter["reason"], *(e["msg"] for e in letter["errors"])]
        explained += [str(e["loc"]) for e in letter["errors"]]
        assert any(reason in part for part in explained), letter
        assert letter["dequeue_count"] == 1
        assert letter["message_id"]
    assert counters_of(client, "cfo")["events_handled"] == 0
    listed = client.get("/api/deadletters").json()["value"]
    assert sorted(item["original"] for item in listed) == sorted(texts)
    assert all(item["queue"] == "deadletter" for item in listed)


def test_poison_queue_messages_are_recorded_and_replayable(
    client: httpx.Client, host_env: dict[str, str]
) -> None:
    """The local host runs the poison queue's function: a message the host gave up on (put on
    `<events>-poison` here, as the host does after maxDequeueCount failures) becomes a letter."""
    assert client.post("/api/agents", json=CFO).status_code == 201
    storage = host_env["AzureWebJobsStorage"]
    event = {"agent_id": "cfo", "type": "invoice.paid", "event_id": "evt-poisoned"}
    original = json.dumps({"version": 1, "target": "agent", "event": event})
    with queue_client(storage, host_env["AOS_EVENTS_QUEUE"] + "-poison") as poison:
        poison.send_message(original)

    def recorded() -> list[dict[str, Any]]:
        return list(client.get("/api/poison").json()["value"])

    (item,) = wait_for(recorded, "the poison letter")
    assert item["original"] == original
    assert item["event_id"] == "evt-poisoned"
    replayed = client.post(f"/api/poison/{item['id']}/replay")
    assert replayed.status_code == 202, replayed.text
    handled = wait_for_events(client, "cfo", 1)
    assert [e["event_id"] for e in handled["recent_events"]] == ["evt-poisoned"]
    again = client.post(f"/api/poison/{item['id']}/replay")
    assert again.status_code == 404
    assert again.headers["content-type"] == PROBLEM_JSON
