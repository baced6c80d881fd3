"""A broadcast to 10,000 subscribers, over the in-memory adapters (the real service, delivery
and entity code; issue 15: "10,000 subscribers work"): the publish is split into as few queue
messages as the 64 KB limit allows, each named recipient is looked up and signalled once,
every subscriber applies the event exactly once (a second publish of the same event id is
dropped by the delivery receipts), and recipients that left before delivery are skipped."""

from __future__ import annotations

import json

import pytest

from aos import AgentManager, PerpetualAgent
from aos.domain.messages import MAX_MESSAGE_BYTES
from aos.domain.models import Event

pytestmark = pytest.mark.asyncio

SUBSCRIBERS = 10_000


def agent_id(n: int) -> str:
    return f"subscriber-with-a-rather-long-identifier-{n:05d}"  # 46 characters


async def test_a_broadcast_to_10000_subscribers_applies_once_each() -> None:
    manager = AgentManager()
    for n in range(SUBSCRIBERS):
        manager.register_agent(PerpetualAgent(agent_id(n), subscriptions=["market.update"]))
    manager.register_agent(PerpetualAgent("bystander", subscriptions=["other.type"]))
    event = {"event_id": "broadcast-1", "type": "market.update", "data": {"price": 42}}

    queued = await manager.service.publish_event(Event.model_validate(event))  # not delivered
    texts = list(manager.queue.messages)
    assert queued == SUBSCRIBERS
    assert all(len(t.encode()) <= MAX_MESSAGE_BYTES for t in texts)
    named = [r for t in texts for r in json.loads(t)["recipients"]]
    assert sorted(named) == sorted(agent_id(n) for n in range(SUBSCRIBERS))  # each once
    per_message = MAX_MESSAGE_BYTES // (len(agent_id(0)) + 3)
    assert len(texts) <= SUBSCRIBERS // per_message + 2  # as few messages as fit

    left = [agent_id(n) for n in range(0, SUBSCRIBERS, 1000)]  # ten leave before delivery
    for gone in left:
        manager.deregister_agent(gone)
    await manager.deliver_queued()
    again = await manager.publish_event(event)  # the same event id again: dropped
    assert again == SUBSCRIBERS - len(left)

    handled = {
        agent.agent_id: agent.context.counters.events_handled for agent in manager.list_agents()
    }
    assert handled.pop("bystander") == 0
    assert set(handled) == {agent_id(n) for n in range(SUBSCRIBERS)} - set(left)
    assert set(handled.values()) == {1}
    assert not manager.queue.dead_letters  # nobody was an unknown agent
