"""The manager and the delivery over the in-memory adapters: the same logic the integration tests
run on Azurite, in milliseconds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
from pydantic import JsonValue

from aos import AgentKinds, Event, GenericPurposeDrivenAgent, Limits
from aos.adapters.memory import (
    InMemoryAgentIndex,
    InMemoryDeliveryReceipts,
    InMemoryEntities,
    InMemoryEventQueue,
)
from aos.agents.entity import AgentEntity
from aos.domain.contexts import ContextMCPServer
from aos.domain.history import HistoryQuery, InMemoryHistoryArchive
from aos.domain.models import AgentSpec, GoalCreate
from aos.errors import AgentExistsError, InvalidInputError, LimitExceededError, StorageError
from aos.ports.index import IndexEntry, IndexStatus
from aos.services.agents import AgentService
from aos.services.contexts import EntityContextServer
from aos.services.delivery import EventDelivery

pytestmark = pytest.mark.asyncio


class Flaky(GenericPurposeDrivenAgent):
    kind: ClassVar[str] = "flaky"
    broken: ClassVar[bool] = True

    def on_event(self, event: Event) -> JsonValue:
        if Flaky.broken:
            raise RuntimeError("bug")
        return {"ok": event.event_id}


@dataclass
class Services:
    manager: AgentService
    delivery: EventDelivery
    queue: InMemoryEventQueue
    entities: InMemoryEntities
    history: InMemoryHistoryArchive

    async def deliver_all(self) -> int:
        texts = self.queue.take()
        for i, text in enumerate(texts):
            await self.delivery.deliver(body=text.encode(), message_id=f"m{i}-{hash(text)}")
        return len(texts)


@pytest.fixture
def services() -> Services:
    kinds = AgentKinds.builtin()
    kinds.register(Flaky)
    Flaky.broken = True
    limits = Limits(user_state_bytes=2048)
    index, queue, receipts = InMemoryAgentIndex(), InMemoryEventQueue(), InMemoryDeliveryReceipts()
    history = InMemoryHistoryArchive()
    entities = InMemoryEntities(AgentEntity(kinds, limits), history=history, receipts=receipts)
    contexts = ContextMCPServer(states=EntityContextServer(entities), archive=history)
    manager = AgentService(
        index=index, queue=queue, entities=entities, kinds=kinds, limits=limits,
        receipts=receipts, settle_timeout=0.01, contexts=contexts,
    )  # fmt: skip
    delivery = EventDelivery(index=index, queue=queue, entities=entities, receipts=receipts)
    return Services(manager, delivery, queue, entities, history)


async def test_register_send_deliver_and_read_back(services: Services) -> None:
    change = await services.manager.register_agent(AgentSpec(agent_id="a1", purpose="Grow"))
    assert change.settled
    assert change.value.status is IndexStatus.ACTIVE
    with pytest.raises(AgentExistsError):
        await services.manager.register_agent(AgentSpec(agent_id="a1", purpose="Grow"))
    await services.manager.send_event(Event(event_id="e1", agent_id="a1", type="t"))
    await services.manager.send_event(Event(event_id="e1", agent_id="a1", type="t"))  # a retry
    assert await services.deliver_all() == 2
    context = await services.manager.get_context("a1")
    assert context["counters"]["events_handled"] == 1
    page = await services.manager.get_history("a1", HistoryQuery())
    assert [r.event_id for r in page.records] == ["e1"]


async def test_a_failed_event_applies_when_sent_again(services: Services) -> None:
    await services.manager.register_agent(AgentSpec(agent_id="f1", kind="flaky", purpose="Grow"))
    await services.manager.send_event(Event(event_id="e1", agent_id="f1", type="t"))
    await services.deliver_all()
    Flaky.broken = False
    await services.manager.send_event(Event(event_id="e1", agent_id="f1", type="t"))
    await services.deliver_all()
    counters = (await services.manager.get_context("f1"))["counters"]
    assert (counters["events_handled"], counters["events_failed"]) == (1, 1)
    page = await services.manager.get_history("f1", HistoryQuery())
    assert [(r.kind, r.result) for r in page.records] == [
        ("event", {"ok": "e1"}),
        ("failure", None),
    ]


async def test_a_registering_agent_is_finished_by_a_broadcast(services: Services) -> None:
    spec = AgentSpec(agent_id="a1", purpose="Grow", subscriptions=("tick",))
    await services.manager.index.create(entry=IndexEntry(spec=spec))
    assert await services.manager.publish_event(Event(event_id="b1", type="tick")) == 1
    await services.deliver_all()
    assert (await services.manager.get_context("a1"))["counters"]["events_handled"] == 1
    entry = await services.manager.index.get(agent_id="a1")
    assert entry is not None
    assert entry.status is IndexStatus.ACTIVE


async def test_patch_is_checked_against_current_goals(services: Services) -> None:
    await services.manager.register_agent(AgentSpec(agent_id="a1", purpose="Grow"))
    await services.manager.add_goal("a1", GoalCreate(description="g" * 1000))
    with pytest.raises(LimitExceededError):
        await services.manager.update_agent("a1", {"purpose": "p" * 1200})
    entry = await services.manager.index.get(agent_id="a1")
    assert entry is not None
    assert entry.spec.purpose == "Grow"


async def test_undeliverable_messages_are_dead_lettered(services: Services) -> None:
    outcome = await services.delivery.deliver(body=b"not json", message_id="m1")
    assert outcome.dead_letter_reason is not None
    (letter,) = services.queue.dead_letters
    assert letter.original == "not json"
    event = {"event_id": "e1", "agent_id": "ghost", "type": "t"}
    text = json.dumps({"version": 1, "target": "agent", "event": event})
    await services.delivery.deliver(body=text.encode(), message_id="m2")
    assert "not registered" in services.queue.dead_letters[-1].reason


async def test_a_broadcast_failing_for_one_recipient_is_retried_for_it_alone(
    services: Services,
) -> None:
    for i in range(40):
        await services.manager.register_agent(
            AgentSpec(agent_id=f"s{i}", purpose="Grow", subscriptions=("tick",))
        )
    real_signal = services.entities.signal
    down: set[str] = {"s7"}

    async def signal(*, agent_id: str, operation: str, value: object = None) -> None:
        if agent_id in down:
            raise StorageError("the durable webhook is down")
        await real_signal(agent_id=agent_id, operation=operation, value=value)

    services.entities.signal = signal  # type: ignore[method-assign]
    assert await services.manager.publish_event(Event(event_id="b1", type="tick")) == 40
    (text,) = services.queue.take()
    with pytest.raises(StorageError):
        await services.delivery.deliver(body=text.encode(), message_id="m1")
    down.clear()  # the host retries the same message
    outcome = await services.delivery.deliver(body=text.encode(), message_id="m1")
    assert outcome.agents == ("s7",)
    assert len(outcome.duplicates) == 39
    for i in range(40):
        context = await services.manager.get_context(f"s{i}")
        assert context["counters"]["events_handled"] == 1


async def test_a_forged_listing_token_is_invalid_input_in_memory_too(services: Services) -> None:
    from aos.ports.index import encode_token

    for forged in ("%%%", encode_token({"PartitionKey": "x"}), encode_token("history|x")):
        with pytest.raises(InvalidInputError):
            await services.manager.list_agents(limit=10, continuation=forged)
