"""The agent classes, including the seed's three test patterns (lifecycle, alignment, events)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import JsonValue

from aos import (
    AgentKinds,
    ConflictError,
    Event,
    GenericPurposeDrivenAgent,
    InvalidInputError,
    LeadershipAgent,
    LimitExceededError,
    Limits,
    PerpetualAgent,
)
from aos.domain.contexts import InMemoryContextServer
from aos.errors import ConfigurationError, GoalNotFoundError, UnknownKindError


# ---- the seed's patterns ------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_perpetual_agent_lifecycle() -> None:
    agent = GenericPurposeDrivenAgent(agent_id="test_agent", purpose="Testing", adapter_name="test")
    await agent.initialize()
    assert agent.context_server is not None
    await agent.update_state("test_key", "test_value")
    assert await agent.get_state("test_key") == "test_value"
    await agent.cleanup()


@pytest.mark.asyncio
async def test_purpose_alignment() -> None:
    agent = GenericPurposeDrivenAgent(
        agent_id="ceo",
        purpose="Strategic growth",
        purpose_scope="Major decisions",
        adapter_name="ceo",
    )
    await agent.initialize()
    alignment = await agent.evaluate_purpose_alignment({"type": "hire", "role": "engineer"})
    assert isinstance(alignment, float)
    assert 0.0 <= alignment <= 1.0
    await agent.cleanup()


@pytest.mark.asyncio
async def test_event_handling() -> None:
    agent = GenericPurposeDrivenAgent(
        agent_id="test", purpose="Event processing", adapter_name="test"
    )
    await agent.initialize()
    result = await agent.handle_event({"type": "test_event", "data": "test"})
    assert result["status"] == "applied"
    last_event = await agent.get_state("last_event")
    assert last_event is not None
    assert last_event["type"] == "test_event"
    await agent.cleanup()


# ---- persistence through the context server -----------------------------------------------------
@pytest.mark.asyncio
async def test_state_survives_a_new_agent_object_with_the_same_server() -> None:
    server = InMemoryContextServer()
    first = LeadershipAgent(agent_id="ceo", adapter_name="ceo", context_server=server)
    await first.initialize()
    goal_id = await first.add_goal("Increase revenue by 50%")
    await first.update_goal(goal_id, status="in_progress")
    await first.handle_event({"event_id": "e1", "type": "board.meeting"})
    await first.cleanup()

    second = LeadershipAgent(agent_id="ceo", adapter_name="ceo", context_server=server)
    await second.initialize()
    goals = await second.get_goals()
    assert [(g.id, g.status) for g in goals] == [(goal_id, "in_progress")]
    assert await second.get_state("events_handled") == 1
    # the same event again is recognised as a duplicate, even by the new object
    assert (await second.handle_event({"event_id": "e1", "type": "board.meeting"}))["status"] == (
        "duplicate"
    )
    assert second.purpose == LeadershipAgent.default_purpose


# ---- behaviour ------------------------------------------------------------------------------------
def test_duplicate_events_are_counted_not_applied() -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="Grow revenue")
    agent.receive({"event_id": "x", "type": "t"})
    assert agent.receive({"event_id": "x", "type": "t"}) == {"event_id": "x", "status": "duplicate"}
    counters = agent.context.counters
    assert (counters.events_handled, counters.duplicates_ignored) == (1, 1)


def test_dedupe_window_forgets_the_oldest_ids() -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="p", limits=Limits(processed_ids=16))
    for i in range(17):
        agent.receive({"event_id": f"e{i}", "type": "t"})
    assert agent.receive({"event_id": "e16", "type": "t"})["status"] == "duplicate"
    assert agent.receive({"event_id": "e0", "type": "t"})["status"] == "applied"  # forgotten


def test_windows_are_bounded_and_newest_last() -> None:
    limits = Limits(recent_events=3)
    agent = GenericPurposeDrivenAgent("a1", purpose="p", limits=limits)
    for i in range(10):
        agent.receive({"event_id": f"e{i}", "type": "t", "data": {"i": i}})
    assert [e.event_id for e in agent.context.recent_events] == ["e7", "e8", "e9"]
    assert agent.context.last_event is not None
    assert agent.context.last_event.event_id == "e9"


def test_large_event_data_is_not_kept_in_the_window() -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="p", limits=Limits(event_preview_bytes=32))
    agent.receive({"event_id": "big", "type": "t", "data": {"blob": "x" * 100}})
    last = agent.context.last_event
    assert last is not None
    assert (last.data, last.data_truncated) == (None, True)


def test_events_with_options_are_decisions() -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="Grow revenue with happy customers")
    outcome = agent.receive(
        {
            "event_id": "d1",
            "type": "decision.requested",
            "data": {"options": ["nap", "grow revenue"]},
        }
    )
    assert outcome["result"]["chosen"] == "grow revenue"
    assert agent.context.counters.decisions_made == 1


def test_a_failing_handler_changes_nothing() -> None:
    class Exploding(GenericPurposeDrivenAgent):
        def on_event(self, event: Event) -> JsonValue:
            self.create_goal({"description": "half-done work"})
            raise RuntimeError("boom")

    agent = Exploding("a1", purpose="p")
    outcome = agent.receive({"event_id": "e1", "type": "t"})
    assert outcome == {
        "event_id": "e1",
        "status": "failed",
        "error": {"type": "RuntimeError", "message": "boom"},
    }
    assert agent.context.goals == ()
    counters = agent.context.counters
    assert (counters.events_handled, counters.events_failed) == (0, 1)
    (record,) = agent.take_journal()
    assert (record.kind, record.event_id, record.error) == ("failure", "e1", outcome["error"])
    assert record.sequence == 1


def test_an_event_whose_handler_failed_applies_when_sent_again_after_a_fix() -> None:
    class Flaky(GenericPurposeDrivenAgent):
        broken = True

        def on_event(self, event: Event) -> JsonValue:
            if self.broken:
                raise RuntimeError("bug")
            return {"handled": event.event_id}

    agent = Flaky("a1", purpose="p")
    assert agent.receive({"event_id": "e1", "type": "t"})["status"] == "failed"
    Flaky.broken = False  # the fix is deployed
    outcome = agent.receive({"event_id": "e1", "type": "t"})
    assert (outcome["status"], outcome["result"]) == ("applied", {"handled": "e1"})
    failure, applied = agent.take_journal()
    assert (failure.kind, applied.kind) == ("failure", "event")
    assert (failure.sequence, applied.sequence) == (1, 2)  # distinct history rows
    assert applied.result == {"handled": "e1"}  # what the handler returned is archived


@pytest.mark.asyncio
async def test_the_seed_api_saves_a_failure_and_raises_the_handlers_error() -> None:
    class Exploding(GenericPurposeDrivenAgent):
        def on_event(self, event: Event) -> JsonValue:
            raise RuntimeError("boom")

    agent = Exploding("a1", purpose="p")
    await agent.initialize()
    with pytest.raises(RuntimeError, match="boom"):
        await agent.handle_event({"event_id": "e1", "type": "t"})
    assert agent.context.counters.events_failed == 1


def test_non_json_results_and_values_are_refused() -> None:
    class Weird(GenericPurposeDrivenAgent):
        def on_event(self, event: Event) -> Any:
            return {"when": object()}

    agent = Weird("a1", purpose="p")
    outcome = agent.receive({"event_id": "e1", "type": "t"})
    assert outcome["status"] == "failed"
    assert "not JSON" in outcome["error"]["message"]
    with pytest.raises(InvalidInputError, match="not JSON"):
        agent.set_state_value("k", float("nan"))
    with pytest.raises(InvalidInputError, match="maintained by the agent"):
        agent.set_state_value("last_event", 1)
    assert agent.context.counters.events_handled == 0


def test_goals_lifecycle_and_limits() -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="p", limits=Limits(max_goals=2))
    goal = agent.create_goal({"id": "g1", "description": "First"})
    assert agent.create_goal({"id": "g1", "description": "First"}) == goal  # idempotent retry
    with pytest.raises(ConflictError):
        agent.create_goal({"id": "g1", "description": "Different"})
    agent.create_goal({"description": "Second"})
    with pytest.raises(LimitExceededError):
        agent.create_goal({"description": "Third"})
    achieved = agent.change_goal({"id": "g1", "status": "achieved"})
    assert achieved.progress == 1.0
    with pytest.raises(InvalidInputError, match="at least one"):
        agent.change_goal({"id": "g1"})
    with pytest.raises(GoalNotFoundError):
        agent.delete_goal("nope")
    assert agent.delete_goal("g1").id == "g1"


def test_invalid_specs_name_the_fields() -> None:
    with pytest.raises(InvalidInputError) as info:
        GenericPurposeDrivenAgent("bad id!", purpose="x" * 3000)
    fields = {e.loc[-1] for e in info.value.errors}
    assert {"agent_id", "purpose"} <= fields


def test_kind_registry() -> None:
    kinds = AgentKinds.builtin()
    assert set(kinds) == {"generic", "leadership", "perpetual"}

    @kinds.register(kind="sales")
    class SalesAgent(GenericPurposeDrivenAgent):
        pass

    assert kinds.resolve("sales") is SalesAgent
    with pytest.raises(UnknownKindError, match="registered kinds: generic, leadership"):
        kinds.resolve("nope")
    with pytest.raises(ConfigurationError, match="already registered"):
        kinds.register(LeadershipAgent, kind="sales")
    with pytest.raises(ConfigurationError, match="must match"):
        kinds.register(SalesAgent, kind="Bad Kind")
    assert "sales" not in AgentKinds.builtin()  # registries are independent


def test_plain_perpetual_agent_records_events() -> None:
    agent = PerpetualAgent("p1")
    assert agent.receive({"type": "ping"})["status"] == "applied"
    assert agent.get_state_value("events_handled") == 1
