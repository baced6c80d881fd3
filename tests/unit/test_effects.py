"""Agents that act: ``send`` and ``publish`` inside ``on_event``, over the in-memory adapters
(``AgentManager``): part of the operation, exactly once, bounded, visible in history, and stopped
by the hop limit."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from pydantic import JsonValue

from aos import AgentKinds, AgentManager, LeadershipAgent, PerpetualAgent
from aos.adapters.memory import InMemoryEntities, InMemoryEventQueue
from aos.agents.entity import AgentEntity, EntityBatch
from aos.api.schemas import HistoryItem
from aos.domain.effects import MAX_EFFECTS_PER_EVENT, effect_event_id
from aos.domain.history import HistoryQuery
from aos.domain.limits import Limits
from aos.domain.messages import QueueMessage
from aos.domain.models import Event
from aos.errors import InvalidInputError

pytestmark = pytest.mark.asyncio


class Delegator(LeadershipAgent):
    """Accepts a proposed goal, then delegates it to the agent named in ``data.delegate_to``."""

    kind: ClassVar[str] = "delegator"

    def on_event(self, event: Event) -> JsonValue:
        result = super().on_event(event)
        data = event.data if isinstance(event.data, dict) else {}
        if event.type == "goal.proposed" and isinstance(data.get("delegate_to"), str):
            self.send(data["delegate_to"], "goal.proposed", {"description": data["description"]})
        return result


class Announcer(PerpetualAgent):
    kind: ClassVar[str] = "announcer"

    def on_event(self, event: Event) -> JsonValue:
        if event.type == "announce":
            self.publish("news", {"text": "hello"})
        if event.type == "announce-then-fail":
            self.publish("news", {"text": "never"})
            raise RuntimeError("changed my mind")
        if event.type == "flood":
            for i in range(MAX_EFFECTS_PER_EVENT + 1):
                self.publish("news", {"i": i})
        if event.type == "huge":
            self.publish("news", {"blob": "x" * 70_000})
        return None


class Echo(PerpetualAgent):
    """Answers every ``ping`` with a ``ping`` to the agent in ``data.peer``: forever."""

    kind: ClassVar[str] = "echo"

    def on_event(self, event: Event) -> JsonValue:
        if event.type == "ping" and isinstance(event.data, dict):
            self.send(str(event.data["peer"]), "ping", {"peer": self.agent_id})
        return None


async def _history(manager: AgentManager, agent_id: str, **query: Any) -> list[dict[str, Any]]:
    page = await manager.history.page(agent_id=agent_id, query=HistoryQuery(limit=200, **query))
    return [HistoryItem.from_record(r).model_dump(mode="json") for r in page.records]


async def test_a_leader_delegates_a_goal_by_send_once_with_a_derived_id_and_a_hop() -> None:
    manager = AgentManager()
    leader = manager.register_agent(Delegator(agent_id="ceo", purpose="Grow revenue"))
    manager.register_agent(LeadershipAgent(agent_id="cto", purpose="Grow revenue"))
    await leader.initialize()
    proposal = {"description": "Grow revenue in Europe", "delegate_to": "cto"}
    sent = await manager.send_event(
        "ceo", {"type": "goal.proposed", "data": proposal, "event_id": "e-1"}
    )
    cto = manager.get_agent("cto")
    assert cto is not None
    assert [g.description for g in cto.context.goals] == ["Grow revenue in Europe"]
    delegated = cto.context.last_event
    assert delegated is not None
    assert delegated.event_id == effect_event_id(sent.event_id, 0)
    assert delegated.source == "ceo"
    (record,) = await _history(manager, "ceo", kind="send")
    assert record["event_id"] == "e-1"  # the causing event
    assert record["payload"]["agent_id"] == "cto"
    assert record["payload"]["hops"] == 1
    assert record["payload"]["event_id"] == delegated.event_id
    events = await _history(manager, "cto", kind="event")
    assert [e["payload"]["hops"] for e in events] == [1]

    # The same event again is a duplicate: nothing is sent a second time.
    await manager.send_event("ceo", {"type": "goal.proposed", "data": proposal, "event_id": "e-1"})
    cto = manager.get_agent("cto")
    assert cto is not None
    assert cto.context.counters.events_handled == 1


async def test_a_publish_reaches_each_subscriber_once_and_a_failed_handler_sends_nothing() -> None:
    manager = AgentManager()
    manager.register_agent(Announcer(agent_id="herald"))
    for name in ("a", "b"):
        manager.register_agent(PerpetualAgent(agent_id=name, subscriptions=["news"]))
    await manager.send_event("herald", {"type": "announce"})
    await manager.send_event("herald", {"type": "announce-then-fail"})
    for name in ("a", "b"):
        agent = manager.get_agent(name)
        assert agent is not None
        assert agent.context.counters.events_handled == 1
        assert agent.context.last_event is not None
        assert agent.context.last_event.data == {"text": "hello"}
    kinds = [r["kind"] for r in await _history(manager, "herald")]
    assert sorted(kinds) == ["event", "failure", "publish"]


async def test_effects_are_bounded_per_event_and_by_message_size() -> None:
    manager = AgentManager()
    herald = manager.register_agent(Announcer(agent_id="herald"))
    manager.register_agent(PerpetualAgent(agent_id="a", subscriptions=["news"]))
    await manager.send_event("herald", {"type": "flood"})
    await manager.send_event("herald", {"type": "huge"})
    failures = await _history(manager, "herald", kind="failure")
    errors = sorted(f["error"]["type"] for f in failures)
    assert errors == ["LimitExceededError", "PayloadTooLargeError"]
    a = manager.get_agent("a")
    assert a is not None
    assert a.context.counters.events_handled == 0
    with pytest.raises(InvalidInputError):
        herald.send("not an id!", "x")


async def test_agents_answering_each_other_forever_are_stopped_by_the_hop_limit() -> None:
    manager = AgentManager(max_hops=5)
    manager.register_agent(Echo(agent_id="ping"))
    manager.register_agent(Echo(agent_id="pong"))
    await manager.send_event("ping", {"type": "ping", "data": {"peer": "pong"}})
    counts = [
        agent.context.counters.events_handled
        for agent in (manager.get_agent("ping"), manager.get_agent("pong"))
        if agent is not None
    ]
    assert sum(counts) == 6  # the client's event (hop 0) and five answers (hops 1..5)
    (letter,) = manager.queue.dead_letters
    assert "hop limit" in letter.reason
    assert QueueMessage.model_validate_json(letter.original).event.hops == 6


async def test_a_batch_run_again_emits_the_same_events() -> None:
    kinds = AgentKinds.builtin()
    kinds.register(Announcer)
    entity = AgentEntity(kinds, Limits())
    state = Announcer(agent_id="herald").document.raw
    texts = []
    for _ in range(2):
        queue = InMemoryEventQueue()
        entities = InMemoryEntities(entity, effects=queue)
        entities.load("herald", json.loads(json.dumps(state)))
        entities.run(
            "herald",
            "handle_event",
            {"type": "announce", "event_id": "cause-1", "created_at": "2026-01-01T00:00:00Z"},
        )
        texts.append(queue.take())
    assert texts[0] == texts[1]
    assert len(texts[0]) == 1
    assert EntityBatch().effects is None
