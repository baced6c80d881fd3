"""Every route of the HTTP API, success and failure, against real Azurite and the real entity."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from harness import Aos, running_aos

from aos import Limits
from aos.api.http import OPERATIONS
from aos.api.openapi import openapi_document
from aos.api.paths import FUNCTIONS
from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def aos(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[Aos]:
    async with running_aos(azurite.connection_string, unique_name) as running:
        yield running


def fields(problem: dict[str, Any]) -> set[str]:
    return {"/".join(str(p) for p in e["loc"]) for e in problem.get("errors", [])}


async def assert_not_registered(aos: Aos, agent_id: str) -> None:
    assert (await aos.call("GET", f"agents/{agent_id}")).status == 404
    listed = (await aos.call("GET", "agents")).json["value"]
    assert agent_id not in [a["agent_id"] for a in listed]


# ---- register / read ------------------------------------------------------------------------------
async def test_register_then_read_the_persisted_context(aos: Aos) -> None:
    response = await aos.call(
        "POST",
        "agents",
        {
            "agent_id": "ceo",
            "kind": "leadership",
            "purpose": "Strategic oversight and company growth",
            "success_criteria": ["Revenue growth"],
        },
    )
    assert response.status == 201
    assert response.headers["location"] == "http://localhost:7071/api/agents/ceo"
    assert response.json["status"] == "active"
    assert response.json["kind"] == "leadership"

    context = (await aos.call("GET", "agents/ceo")).json
    assert context["purpose"] == "Strategic oversight and company growth"
    # One resource shape: GET answers what registering and listing answer, and the context.
    (listed,) = (await aos.call("GET", "agents")).json["value"]
    assert {k: context[k] for k in listed} == listed == response.json
    assert set(context) - set(listed) == {
        "goals", "state", "last_event", "recent_events", "recent_decisions", "counters",
        "reminders", "turns", "created_at", "last_active_at",
    }  # fmt: skip
    assert context["counters"] == {
        "events_handled": 0,
        "duplicates_ignored": 0,
        "decisions_made": 0,
        "events_failed": 0,
    }


async def test_register_twice_is_a_conflict(aos: Aos) -> None:
    await aos.register("a1")
    again = await aos.call("POST", "agents", {"agent_id": "a1", "purpose": "Other"})
    assert again.status == 409
    assert again.content_type == "application/problem+json"
    assert again.json["type"] == "urn:aos:problem:conflict"
    assert (await aos.call("GET", "agents/a1")).json["purpose"] != "Other"


@pytest.mark.parametrize(
    ("raw", "headers", "status", "failing"),
    [
        (b"{not json", {}, 400, {"body"}),
        (b"[1, 2]", {}, 400, {"body"}),
        (b"", {}, 400, {"body"}),
        (b'{"agent_id": "bad id!", "purpose": "x"}', {}, 400, {"body/agent_id"}),
        (b'{"agent_id": "a1", "purpose": 42}', {}, 400, {"body/purpose"}),
        (b'{"agent_id": "a1", "purpose": "x", "colour": "red"}', {}, 400, {"body/colour"}),
        (b'{"agent_id": "a1"}', {}, 400, {"body/purpose"}),
        (b'{"agent_id": "a1", "purpose": "x"}', {"content-type": "text/plain"}, 415, set()),
        (b'{"agent_id": "a1", "purpose": "' + b"x" * 70_000 + b'"}', {}, 413, set()),
    ],
)
async def test_invalid_registrations_are_refused_and_write_nothing(
    aos: Aos, raw: bytes, headers: dict[str, str], status: int, failing: set[str]
) -> None:
    response = await aos.call("POST", "agents", raw=raw, headers=headers)
    assert response.status == status, response.text
    assert response.content_type == "application/problem+json"
    assert response.json["status"] == status
    assert failing <= fields(response.json)
    await assert_not_registered(aos, "a1")


async def test_unknown_kind_and_oversized_spec_are_refused(aos: Aos) -> None:
    unknown = await aos.call("POST", "agents", {"agent_id": "a1", "kind": "wizard", "purpose": "x"})
    assert unknown.status == 400
    assert "registered kinds" in unknown.json["detail"]
    huge = {
        "agent_id": "a1",
        "purpose": "p" * 2000,
        "purpose_scope": "s" * 2000,
        "success_criteria": [f"{i}" + "c" * 290 for i in range(20)],
        "subscriptions": [f"{i:02d}" + "t" * 60 for i in range(32)],
    }
    over = await aos.call("POST", "agents", huge)
    assert over.status == 422
    await assert_not_registered(aos, "a1")


async def test_bad_agent_ids_in_paths_are_400s(aos: Aos) -> None:
    for method, path in [("GET", "agents/-x"), ("DELETE", "agents/" + "x" * 65)]:
        response = await aos.call(method, path)
        assert response.status == 400
        assert "path/agent_id" in fields(response.json)


async def test_method_not_allowed_is_a_problem(aos: Aos) -> None:
    response = await aos.call("DELETE", "agents")
    assert response.status == 405
    assert response.headers["allow"] == "GET, POST"


# ---- PUT / PATCH / DELETE ----------------------------------------------------------------------
async def test_put_creates_then_replaces(aos: Aos) -> None:
    created = await aos.call("PUT", "agents/a1", {"purpose": "First", "purpose_scope": "Scope"})
    assert created.status == 201
    replaced = await aos.call("PUT", "agents/a1", {"purpose": "Second"})
    assert replaced.status == 200
    context = (await aos.call("GET", "agents/a1")).json
    assert (context["purpose"], context["purpose_scope"]) == ("Second", "")
    mismatch = await aos.call("PUT", "agents/a1", {"agent_id": "a2", "purpose": "x"})
    assert mismatch.status == 400
    assert "body/agent_id" in fields(mismatch.json)


async def test_patch_changes_only_the_given_fields(aos: Aos) -> None:
    await aos.register("a1", purpose_scope="Sales")
    await aos.call("POST", "agents/a1/events", {"event_id": "e1", "type": "t"})
    await aos.deliver_queued()
    patched = await aos.call("PATCH", "agents/a1", {"purpose": "Delight customers"})
    assert patched.status == 200
    context = (await aos.call("GET", "agents/a1")).json
    assert context["purpose"] == "Delight customers"
    assert context["purpose_scope"] == "Sales"
    assert context["counters"]["events_handled"] == 1  # the rest of the context is kept
    assert (await aos.call("PATCH", "agents/a1", {})).status == 400
    assert (await aos.call("PATCH", "agents/a1", {"purpose": None})).status == 400
    assert (await aos.call("PATCH", "agents/a1", {"kind": "leadership"})).status == 400
    assert (await aos.call("PATCH", "agents/nobody", {"purpose": "x"})).status == 404


async def test_delete_deregisters(aos: Aos) -> None:
    await aos.register("a1")
    deleted = await aos.call("DELETE", "agents/a1")
    assert deleted.status == 204
    await assert_not_registered(aos, "a1")
    assert (await aos.call("DELETE", "agents/a1")).status == 404
    assert (await aos.call("POST", "agents/a1/events", {"type": "t"})).status == 404
    assert (await aos.register("a1")).status == 201  # the id can be registered again


# ---- listing -----------------------------------------------------------------------------------------
async def test_list_pages_return_every_agent_exactly_once(aos: Aos) -> None:
    for i in range(5):
        await aos.register(f"a{i}")
    seen: list[str] = []
    page = await aos.call("GET", "agents", params={"limit": "2"})
    while True:
        assert page.status == 200
        seen += [a["agent_id"] for a in page.json["value"]]
        next_link = page.json["nextLink"]
        if next_link is None:
            break
        token = next_link.split("continuation=")[1]
        page = await aos.call("GET", "agents", params={"limit": "2", "continuation": token})
    assert sorted(seen) == [f"a{i}" for i in range(5)]
    assert len(seen) == 5
    assert (await aos.call("GET", "agents", params={"limit": "0"})).status == 400
    assert (await aos.call("GET", "agents", params={"continuation": "%%%"})).status == 400


# ---- goals ---------------------------------------------------------------------------------------------
async def test_goal_routes(aos: Aos) -> None:
    await aos.register("a1")
    added = await aos.call("POST", "agents/a1/goals", {"id": "g1", "description": "Grow revenue"})
    assert added.status == 201
    assert added.headers["location"].endswith("/api/agents/a1/goals/g1")
    assert added.json["status"] == "pending"
    assert (await aos.call("GET", "agents/a1/goals/g1")).json["description"] == "Grow revenue"

    patched = await aos.call("PATCH", "agents/a1/goals/g1", {"status": "achieved"})
    assert patched.status == 200
    assert (patched.json["status"], patched.json["progress"]) == ("achieved", 1.0)
    listed = await aos.call("GET", "agents/a1/goals")
    assert [g["id"] for g in listed.json["value"]] == ["g1"]
    assert listed.json["nextLink"] is None

    conflict = await aos.call("POST", "agents/a1/goals", {"id": "g1", "description": "Other"})
    assert conflict.status == 409
    same = await aos.call("POST", "agents/a1/goals", {"id": "g1", "description": "Grow revenue"})
    assert same.status == 201  # retrying the same goal is harmless
    assert (await aos.call("PATCH", "agents/a1/goals/nope", {"progress": 0.5})).status == 404
    assert (await aos.call("PATCH", "agents/a1/goals/g1", {"progress": 2})).status == 400
    assert (await aos.call("POST", "agents/a1/goals", {"description": ""})).status == 400
    assert (await aos.call("POST", "agents/nobody/goals", {"description": "x"})).status == 404

    assert (await aos.call("DELETE", "agents/a1/goals/g1")).status == 204
    assert (await aos.call("DELETE", "agents/a1/goals/g1")).status == 404
    assert (await aos.call("GET", "agents/a1/goals")).json["value"] == []


async def test_generated_goal_ids(aos: Aos) -> None:
    await aos.register("a1")
    added = await aos.call("POST", "agents/a1/goals", {"description": "Ship it"})
    assert added.status == 201
    goal_id = added.json["id"]
    assert (await aos.call("GET", f"agents/a1/goals/{goal_id}")).status == 200


# ---- events ----------------------------------------------------------------------------------------------
async def test_event_flows_from_http_through_the_queue_to_the_entity(aos: Aos) -> None:
    await aos.register("a1")
    accepted = await aos.call(
        "POST",
        "agents/a1/events",
        {"type": "order.created", "data": {"total": 12}},
        headers={"x-correlation-id": "req-42"},
    )
    assert accepted.status == 202
    body = accepted.json
    assert body["agent_id"] == "a1"
    assert body["links"]["agent"] == "http://localhost:7071/api/agents/a1"
    assert body["correlation_id"] == "req-42"
    assert accepted.headers["x-correlation-id"] == "req-42"

    assert await aos.deliver_queued() == 1
    context = (await aos.call("GET", "agents/a1")).json
    assert context["last_event"]["event_id"] == body["event_id"]
    assert context["last_event"]["correlation_id"] == "req-42"
    assert context["last_event"]["data"] == {"total": 12}
    assert context["counters"]["events_handled"] == 1


async def test_duplicate_posts_and_deliveries_apply_once(aos: Aos) -> None:
    await aos.register("a1")
    for _ in range(2):
        response = await aos.call("POST", "agents/a1/events", {"event_id": "order-1", "type": "t"})
        assert response.json["event_id"] == "order-1"
    texts = await aos.queued()
    assert len(texts) == 2
    await aos.deliver(texts[0], message_id="m1")
    await aos.deliver(texts[0], message_id="m1", dequeue_count=2)  # redelivered after a crash
    await aos.deliver(texts[1], message_id="m2")  # the repeated POST
    counters = (await aos.call("GET", "agents/a1")).json["counters"]
    # The receipts caught both duplicates before they reached the entity.
    assert (counters["events_handled"], counters["duplicates_ignored"]) == (1, 0)


async def test_event_errors(aos: Aos) -> None:
    assert (await aos.call("POST", "agents/nobody/events", {"type": "t"})).status == 404
    await aos.register("a1")
    bad_type = await aos.call("POST", "agents/a1/events", {"type": "no spaces allowed"})
    assert bad_type.status == 400
    assert "body/type" in fields(bad_type.json)
    extra = await aos.call("POST", "agents/a1/events", {"type": "t", "agent_id": "a2"})
    assert "body/agent_id" in fields(extra.json)
    # the body fits in 64 KB, the queue message it becomes does not
    big = await aos.call("POST", "agents/a1/events", {"type": "t", "data": "x" * 65_400})
    assert big.status == 413
    assert "queue message" in big.json["detail"]
    bigger = await aos.call("POST", "agents/a1/events", {"type": "t", "data": "x" * 70_000})
    assert bigger.status == 413
    assert await aos.queued() == []


async def test_broadcast_reaches_subscribers_only(aos: Aos) -> None:
    await aos.register("s1", subscriptions=["market.update"])
    await aos.register("s2", subscriptions=["*"])
    await aos.register("other", subscriptions=["weather"])
    published = await aos.call("POST", "events", {"event_id": "m1", "type": "market.update"})
    assert published.status == 202
    assert published.json["subscribers"] == 2
    await aos.deliver_queued()
    for agent_id, expected in [("s1", 1), ("s2", 1), ("other", 0)]:
        context = (await aos.call("GET", f"agents/{agent_id}")).json
        assert context["counters"]["events_handled"] == expected, agent_id
    # a subscription change moves the index rows with it
    await aos.call("PATCH", "agents/other", {"subscriptions": ["market.update"]})
    assert (await aos.call("POST", "events", {"type": "market.update"})).json["subscribers"] == 3


async def test_broadcast_goes_to_the_subscribers_at_publishing(aos: Aos) -> None:
    await aos.register("s1", subscriptions=["market.update"])
    await aos.register("s2", subscriptions=["market.update"])
    published = await aos.call("POST", "events", {"event_id": "m1", "type": "market.update"})
    assert published.json["subscribers"] == 2
    # before delivery: one subscriber leaves, a new one arrives
    await aos.call("PATCH", "agents/s2", {"subscriptions": []})
    await aos.register("late", subscriptions=["market.update"])
    await aos.deliver_queued()
    for agent_id, expected in [("s1", 1), ("s2", 0), ("late", 0)]:
        context = (await aos.call("GET", f"agents/{agent_id}")).json
        assert context["counters"]["events_handled"] == expected, agent_id
    # nobody subscribed: nothing is queued, but the event is still validated in full
    assert (await aos.call("POST", "events", {"type": "nobody.listens"})).json["subscribers"] == 0
    assert await aos.queued() == []
    big = await aos.call("POST", "events", {"type": "nobody.listens", "data": "x" * 65_400})
    assert big.status == 413


# ---- the queue path's bad input ---------------------------------------------------------------------
async def dead_letters(aos: Aos) -> list[dict[str, Any]]:
    return [json.loads(t) for t in await aos.queued(aos.settings.deadletter_queue)]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json at all", "not a valid AOS event envelope"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"version": 1, "target": "agent", "event": {"type": "t"}}', "needs event.agent_id"),
        (b'{"version": 1, "target": "agent", "event": {"agent_id": "ghost", "type": "t"}}',
         "'ghost' is not registered"),
        (b'{"version": 1, "target": "agent", "event": {"agent_id": "a1", "type": "t", "x": 1}}',
         "not a valid AOS event envelope"),
    ],
)  # fmt: skip
async def test_messages_that_can_never_be_valid_are_dead_lettered(
    aos: Aos, body: bytes, reason: str
) -> None:
    await aos.register("a1")
    await aos.deliver(body)
    (letter,) = await dead_letters(aos)
    assert reason in letter["reason"] or any(reason in e["msg"] for e in letter["errors"])
    assert letter["original"] == body.decode("utf-8", errors="replace") or body == b"\xff\xfe"
    assert (await aos.call("GET", "agents/a1")).json["counters"]["events_handled"] == 0


async def test_events_for_a_deregistered_agent_are_dead_lettered(aos: Aos) -> None:
    await aos.register("a1")
    await aos.call("POST", "agents/a1/events", {"type": "t"})
    (text,) = await aos.queued()
    await aos.call("DELETE", "agents/a1")
    await aos.deliver(text)
    (letter,) = await dead_letters(aos)
    assert "not registered" in letter["reason"]
    assert json.loads(letter["original"])["event"]["agent_id"] == "a1"


# ---- alignment, health, OpenAPI ----------------------------------------------------------------------
async def test_alignment(aos: Aos) -> None:
    await aos.register("a1", purpose="Grow revenue through delighted customers")
    good = await aos.call(
        "POST", "agents/a1/alignment", {"action": "delight customers to grow revenue"}
    )
    bad = await aos.call(
        "POST", "agents/a1/alignment", {"action": {"type": "repaint", "room": "hall"}}
    )
    assert good.status == bad.status == 200
    assert good.json["score"] > bad.json["score"]
    assert "revenue" in good.json["matched_terms"]
    assert (await aos.call("POST", "agents/a1/alignment", {"action": ""})).status == 400
    assert (await aos.call("POST", "agents/nobody/alignment", {"action": "x"})).status == 404


async def test_health(aos: Aos) -> None:
    response = await aos.call("GET", "health")
    assert response.status == 200
    assert response.json["storage"] == {"queues": "ok", "tables": "ok"}


async def test_openapi_lists_every_http_route_and_method_of_the_app(aos: Aos) -> None:
    document = (await aos.call("GET", "openapi.json")).json
    assert document == json.loads(
        json.dumps(openapi_document(OPERATIONS, server="http://localhost:7071/api"))
    )
    served = set()
    for function in aos.host.functions:
        # The MCP endpoint speaks JSON-RPC (MCP), described by MCP's own discovery, not OpenAPI.
        if function.trigger_type == "httpTrigger" and function.name != "mcp":
            for method in function.trigger["methods"]:
                served.add((f"/{function.trigger['route']}", method.lower()))
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served == documented
    assert {p.route for p in FUNCTIONS.values()} == {path[1:] for path, _ in served}
    register = document["paths"]["/agents"]["post"]
    schema_ref = register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"agent_id", "purpose"}


async def test_limits_from_settings_apply_to_http(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    async with running_aos(
        azurite.connection_string, unique_name, limits=Limits(max_goals=1)
    ) as aos:
        await aos.register("a1")
        assert (await aos.call("POST", "agents/a1/goals", {"description": "one"})).status == 201
        over = await aos.call("POST", "agents/a1/goals", {"description": "two"})
        assert over.status == 422
        assert "at most 1 goals" in over.json["detail"]
