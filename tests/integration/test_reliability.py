"""Nothing accepted is lost: each scenario of the reliability review, through the real queue
function, the entity function and the history table on Azurite."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from azure.data.tables.aio import TableClient
from harness import Aos, running_aos
from pydantic import JsonValue

from aos import AgentKinds, Event, GenericPurposeDrivenAgent, Limits
from aos.adapters.azure.history import TRANSACTION_BYTES, TableHistoryArchive
from aos.domain.history import HistoryRecord
from aos.domain.models import AgentSpec
from aos.ports.index import IndexEntry
from aos.ports.receipts import Claim
from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = [pytest.mark.asyncio, pytest.mark.azurite]


class FlakyAgent(GenericPurposeDrivenAgent):
    """Raises on ``explode`` events until its bug is fixed; answers what it handled."""

    kind: ClassVar[str] = "flaky"
    fixed: ClassVar[bool] = False

    def on_event(self, event: Event) -> JsonValue:
        if event.type == "explode" and not FlakyAgent.fixed:
            raise RuntimeError("the handler has a bug")
        return {"handled": event.event_id}


@pytest_asyncio.fixture
async def aos(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[Aos]:
    kinds = AgentKinds.builtin()
    kinds.register(FlakyAgent)
    FlakyAgent.fixed = False
    async with running_aos(
        azurite.connection_string, unique_name, kinds=kinds, limits=Limits(user_state_bytes=2048)
    ) as running:
        yield running


async def context(aos: Aos, agent_id: str) -> dict[str, Any]:
    response = await aos.call("GET", f"agents/{agent_id}")
    assert response.status == 200, response.text
    return dict(response.json)


async def history(aos: Aos, agent_id: str, **params: str) -> list[dict[str, Any]]:
    response = await aos.call("GET", f"agents/{agent_id}/history", params=params)
    assert response.status == 200, response.text
    return list(response.json["value"])


async def post_and_deliver(aos: Aos, agent_id: str, body: dict[str, Any]) -> None:
    response = await aos.call("POST", f"agents/{agent_id}/events", body)
    assert response.status == 202, response.text
    assert await aos.deliver_queued() == 1


# ---- 1. a failing handler is recorded and its event can be sent again ----------------------------
async def test_a_failing_handler_is_recorded_and_the_event_applies_when_sent_again(
    aos: Aos,
) -> None:
    await aos.register("f1", kind="flaky")
    await post_and_deliver(aos, "f1", {"event_id": "e1", "type": "explode"})

    counters = (await context(aos, "f1"))["counters"]
    assert (counters["events_handled"], counters["events_failed"]) == (0, 1)
    (failure,) = await history(aos, "f1")
    assert (failure["kind"], failure["event_id"], failure["type"]) == ("failure", "e1", "explode")
    assert failure["error"] == {"type": "RuntimeError", "message": "the handler has a bug"}
    assert failure["payload"]["event_id"] == "e1"
    assert await history(aos, "f1", kind="failure") == [failure]

    FlakyAgent.fixed = True  # the fix is deployed; the client sends the same event again
    await post_and_deliver(aos, "f1", {"event_id": "e1", "type": "explode"})
    counters = (await context(aos, "f1"))["counters"]
    assert (counters["events_handled"], counters["events_failed"]) == (1, 1)
    applied, _ = await history(aos, "f1")
    assert (applied["kind"], applied["event_id"]) == ("event", "e1")
    assert applied["result"] == {"handled": "e1"}  # what the handler returned is in history

    # Once applied, the same event again is a duplicate, as before.
    await post_and_deliver(aos, "f1", {"event_id": "e1", "type": "explode"})
    assert (await context(aos, "f1"))["counters"]["events_handled"] == 1


async def test_a_broadcast_that_failed_for_its_recipients_applies_when_published_again(
    aos: Aos,
) -> None:
    """A broadcast's receipts live in the event's partition, not the agent's: the failure
    releases the receipt there too, so the same event published again reaches them."""
    agents = [f"f{i}" for i in range(6)]
    for agent_id in agents:
        await aos.register(agent_id, kind="flaky", subscriptions=["explode"])

    async def publish() -> None:
        response = await aos.call("POST", "events", {"event_id": "b1", "type": "explode"})
        assert response.status == 202, response.text
        assert await aos.deliver_queued() == 1

    await publish()
    counters = [(await context(aos, a))["counters"] for a in agents]
    assert {(c["events_handled"], c["events_failed"]) for c in counters} == {(0, 1)}
    FlakyAgent.fixed = True
    await publish()
    await publish()  # once applied, a duplicate
    counters = [(await context(aos, a))["counters"] for a in agents]
    assert {(c["events_handled"], c["events_failed"]) for c in counters} == {(1, 1)}


# ---- 2. a claim that never confirmed its signal does not count as delivered ----------------------
async def test_an_unconfirmed_claim_of_another_message_is_taken_over(aos: Aos) -> None:
    await aos.register("a1")
    receipts = aos.runtime.storage().receipts
    # The first message claimed the event, then storage failed and it ended in the poison queue.
    assert await receipts.claim(agent_id="a1", event_id="e1", message_id="m1") is Claim.NEW
    event = {"event_id": "e1", "agent_id": "a1", "type": "t"}
    replay = json.dumps({"version": 1, "target": "agent", "event": event})
    await aos.deliver(replay, message_id="m2")  # replayed, or the client's retry
    assert (await context(aos, "a1"))["counters"]["events_handled"] == 1
    # Confirmed now: a third message with the same event is a duplicate.
    assert await receipts.claim(agent_id="a1", event_id="e1", message_id="m3") is Claim.OTHER


# ---- 3 and 9. an unfinished registration is finished, never poisoned -----------------------------
async def crash_after_index_write(aos: Aos, agent_id: str, **spec: Any) -> None:
    index = aos.runtime.storage().index
    full = AgentSpec(agent_id=agent_id, purpose="Grow", **spec)
    await index.create(entry=IndexEntry(spec=full))


async def test_an_event_for_an_unfinished_registration_finishes_it(aos: Aos) -> None:
    await crash_after_index_write(aos, "a1")
    await post_and_deliver(aos, "a1", {"event_id": "e1", "type": "t"})
    assert (await context(aos, "a1"))["counters"]["events_handled"] == 1
    (listed,) = (await aos.call("GET", "agents")).json["value"]
    assert listed["status"] == "active"


async def test_a_patch_finishes_an_unfinished_registration(aos: Aos) -> None:
    await crash_after_index_write(aos, "a1")
    response = await aos.call("PATCH", "agents/a1", {"purpose": "Grow faster"})
    assert response.status == 200, response.text
    assert (response.json["status"], response.json["purpose"]) == ("active", "Grow faster")


async def test_a_broadcast_to_an_agent_still_registering_reaches_it(aos: Aos) -> None:
    await crash_after_index_write(aos, "a1", subscriptions=("tick",))
    await aos.register("a2", subscriptions=["tick"])
    response = await aos.call("POST", "events", {"event_id": "b1", "type": "tick"})
    assert response.json["subscribers"] == 2
    assert await aos.deliver_queued() == 1
    for agent_id in ("a1", "a2"):
        assert (await context(aos, agent_id))["counters"]["events_handled"] == 1


# ---- 4. PATCH and PUT are checked against the agent's current state ------------------------------
async def test_a_patch_over_the_budget_with_current_goals_changes_neither_index_nor_entity(
    aos: Aos,
) -> None:
    await aos.register("a1", subscriptions=["old"])
    goal = await aos.call("POST", "agents/a1/goals", {"description": "g" * 1000})
    assert goal.status == 201, goal.text
    # The new purpose alone fits the 2,048-byte budget; with the goal it does not.
    for method, path, body in (
        ("PATCH", "agents/a1", {"purpose": "p" * 1200, "subscriptions": ["new"]}),
        ("PUT", "agents/a1", {"purpose": "p" * 1200, "subscriptions": ["new"]}),
    ):
        response = await aos.call(method, path, body)
        assert response.status == 422, response.text
        assert response.json["type"] == "urn:aos:problem:limit-exceeded"
    (listed,) = (await aos.call("GET", "agents")).json["value"]
    assert listed["subscriptions"] == ["old"]
    assert (await context(aos, "a1"))["subscriptions"] == ["old"]
    published = await aos.call("POST", "events", {"type": "new"})
    assert published.json["subscribers"] == 0


# ---- 5. history transactions are sized as they are sent --------------------------------------------
async def test_large_events_full_of_quotes_and_non_ascii_are_archived(aos: Aos) -> None:
    """Through the archive the entity function writes with (``TableHistoryArchive.append``)."""
    bodies: list[int] = []

    def measure(request: Any) -> None:
        body = request.http_request.body
        if body:
            bodies.append(len(body))

    client = TableClient.from_connection_string(
        aos.connection_string, aos.settings.history_table, raw_request_hook=measure
    )

    text = ('"quoted" élan 😀 ' * 3_000)[:43_000]  # about 60 KB as UTF-8 JSON
    assert 55_000 < len(json.dumps(text, ensure_ascii=False).encode()) < 64_000
    records = [
        HistoryRecord(
            "big", "2026-01-01T00:00:00.000000Z", i, "event", f"e{i}", "t",
            "2026-01-01T00:00:00.000000Z", {"event_id": f"e{i}", "data": text},
        )
        for i in range(1, 61)
    ]  # fmt: skip
    archive = TableHistoryArchive(client)
    await archive.append(records=records)
    await archive.close()
    assert len(bodies) > 1  # split over several transactions
    assert max(bodies) <= TRANSACTION_BYTES < 4 * 1024 * 1024
    items = await history(aos, "big", limit="100")
    assert [i["event_id"] for i in items] == [f"e{i}" for i in range(60, 0, -1)]
    assert all(i["payload"]["data"] == text for i in items)


# ---- 6. what is accepted is deliverable, measured as it travels ------------------------------------
async def test_an_event_that_could_not_travel_as_a_signal_is_refused_at_the_edge(aos: Aos) -> None:
    await aos.register("a1")
    too_big = {"type": "t", "data": "😀" * 15_000}  # 60 KB queued, 210,000 characters signalled
    raw = json.dumps(too_big, ensure_ascii=False).encode()
    assert len(raw) < 64 * 1024
    response = await aos.call("POST", "agents/a1/events", raw=raw)
    assert response.status == 413, response.text
    assert "signal" in response.json["detail"]
    fits = json.dumps({"type": "t", "data": "😀" * 12_000}, ensure_ascii=False).encode()
    assert (await aos.call("POST", "agents/a1/events", raw=fits)).status == 202
    assert await aos.deliver_queued() == 1
    assert (await context(aos, "a1"))["counters"]["events_handled"] == 1


# ---- 7. events a kind could never apply are refused ------------------------------------------------
async def test_events_that_can_never_apply_are_refused_with_the_failing_fields(aos: Aos) -> None:
    await aos.register("lead", kind="leadership")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "decide", "data": {"options": []}}, "/body/data/options"),
        ({"type": "decide", "data": {"options": list(range(21))}}, "/body/data/options"),
        ({"type": "goal.proposed", "data": {"title": "no description"}}, "/body/data/description"),
        ({"type": "goal.proposed", "data": {"description": " "}}, "/body/data/description"),
    ]
    for body, pointer in cases:
        for path in ("agents/lead/events", "events"):
            response = await aos.call("POST", path, body)
            assert response.status == 400, (path, body, response.text)
            assert pointer in [e["pointer"] for e in response.json["errors"]], response.text
    assert await aos.queued() == []


# ---- 8. a new registration is a new agent --------------------------------------------------------
async def test_receipts_of_a_deregistered_agent_do_not_skip_the_new_ones_events(aos: Aos) -> None:
    await aos.register("a1")
    await post_and_deliver(aos, "a1", {"event_id": "e1", "type": "t"})
    assert (await aos.call("DELETE", "agents/a1")).status == 204
    await aos.register("a1")
    await post_and_deliver(aos, "a1", {"event_id": "e1", "type": "t"})
    assert (await context(aos, "a1"))["counters"]["events_handled"] == 1
