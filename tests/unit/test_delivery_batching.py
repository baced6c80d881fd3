"""Group commit of deliveries to one agent (``aos.services.batching``): events that arrive while
the agent's previous signal is in flight share one ``handle_events`` operation, each still
exactly once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import pytest_asyncio

from aos import AgentKinds, Limits
from aos.adapters.memory import InMemoryAgentIndex, InMemoryDeliveryReceipts, InMemoryEntities
from aos.agents.entity import AgentEntity
from aos.domain.models import AgentSpec
from aos.errors import StorageError
from aos.ports.index import IndexEntry, IndexStatus
from aos.ports.receipts import Claim
from aos.services.batching import MAX_EVENTS, DeliveryBatcher
from aos.services.delivery import EventDelivery


class GatedEntities(InMemoryEntities):
    """Signals wait at a gate (an HTTP call in flight), then apply; every operation is recorded."""

    def __init__(self, entity: AgentEntity, receipts: InMemoryDeliveryReceipts) -> None:
        super().__init__(entity, receipts=receipts)
        self.gate = asyncio.Event()
        self.operations: list[tuple[str, Any]] = []
        self.failures = 0

    async def signal(self, *, agent_id: str, operation: str, value: Any = None) -> None:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise StorageError("the durable client failed")
        self.operations.append((operation, value))
        await super().signal(agent_id=agent_id, operation=operation, value=value)


class Setup:
    def __init__(self) -> None:
        self.index = InMemoryAgentIndex()
        self.receipts = InMemoryDeliveryReceipts()
        entity = AgentEntity(AgentKinds.builtin(), Limits())
        self.entities = GatedEntities(entity, self.receipts)
        self.batcher = DeliveryBatcher(self.receipts)
        self.delivery = EventDelivery(
            index=self.index,
            queue=None,  # type: ignore[arg-type]  # nothing here is dead-lettered
            entities=self.entities,
            receipts=self.receipts,
            batcher=self.batcher,
        )

    async def register(self, agent_id: str) -> None:
        spec = AgentSpec(agent_id=agent_id, purpose="Count")
        await self.index.create(entry=IndexEntry(spec=spec, status=IndexStatus.ACTIVE))
        self.entities.run(agent_id, "configure", spec.model_dump(mode="json"))

    async def deliver(self, agent_id: str, event_id: str, message_id: str) -> Any:
        event = {"event_id": event_id, "agent_id": agent_id, "type": "tick"}
        body = json.dumps({"version": 1, "target": "agent", "event": event}).encode()
        return await self.delivery.deliver(body=body, message_id=message_id)

    def handled(self, agent_id: str) -> int:
        state = self.entities.state(agent_id)
        assert state is not None
        return int(state["counters"]["events_handled"])


@pytest_asyncio.fixture
async def setup() -> Setup:
    ready = Setup()
    await ready.register("a1")
    return ready


@pytest.mark.asyncio
async def test_events_that_arrive_while_a_signal_is_in_flight_share_the_next(setup: Setup) -> None:
    deliveries = [asyncio.create_task(setup.deliver("a1", f"e{i}", f"m{i}")) for i in range(20)]
    await asyncio.sleep(0.01)  # all 20 are waiting: the first in flight, 19 behind it
    setup.entities.gate.set()
    outcomes = await asyncio.gather(*deliveries)
    assert [o.agents for o in outcomes] == [("a1",)] * 20
    applied = [
        event["event_id"]
        for name, value in setup.entities.operations
        for event in (value if name == "handle_events" else [value])
    ]
    assert applied == [f"e{i}" for i in range(20)]  # each once, in arrival order
    assert setup.batcher.operations_sent == len(setup.entities.operations) <= 2
    assert setup.entities.operations[-1][0] == "handle_events"
    assert setup.handled("a1") == 20
    # every receipt was confirmed: a redelivery of any message is recognised as done
    claim = await setup.receipts.claim(agent_id="a1", event_id="e7", message_id="m7")
    assert claim is Claim.DONE


@pytest.mark.asyncio
async def test_an_event_twice_in_one_batch_is_applied_once(setup: Setup) -> None:
    first = asyncio.create_task(setup.deliver("a1", "e0", "m0"))
    await asyncio.sleep(0)
    again = [asyncio.create_task(setup.deliver("a1", "order-7", f"retry-{i}")) for i in range(3)]
    await asyncio.sleep(0.01)
    setup.entities.gate.set()
    await first
    outcomes = await asyncio.gather(*again)
    assert sum(len(o.agents) for o in outcomes) >= 1
    assert setup.handled("a1") == 2  # e0 and order-7, once


@pytest.mark.asyncio
async def test_a_batch_never_exceeds_its_limit(setup: Setup) -> None:
    count = 2 * MAX_EVENTS + 5
    deliveries = [asyncio.create_task(setup.deliver("a1", f"e{i}", f"m{i}")) for i in range(count)]
    await asyncio.sleep(0.01)
    setup.entities.gate.set()
    await asyncio.gather(*deliveries)
    sizes = [len(v) if name == "handle_events" else 1 for name, v in setup.entities.operations]
    assert max(sizes) <= MAX_EVENTS
    assert sum(sizes) == count
    assert setup.handled("a1") == count


@pytest.mark.asyncio
async def test_a_failed_signal_fails_every_delivery_of_its_batch_and_a_retry_applies_once(
    setup: Setup,
) -> None:
    setup.entities.failures = 6  # every signal fails: at most one per delivery
    deliveries = [asyncio.create_task(setup.deliver("a1", f"e{i}", f"m{i}")) for i in range(6)]
    await asyncio.sleep(0.01)
    setup.entities.gate.set()
    results = await asyncio.gather(*deliveries, return_exceptions=True)
    assert all(isinstance(r, StorageError) for r in results)
    assert setup.handled("a1") == 0
    setup.entities.failures = 0
    # the host retries each message (same message ids): now they go through, once each
    retries = [asyncio.create_task(setup.deliver("a1", f"e{i}", f"m{i}")) for i in range(6)]
    await asyncio.gather(*retries)
    assert setup.handled("a1") == 6


@pytest.mark.asyncio
async def test_agents_are_batched_apart(setup: Setup) -> None:
    await setup.register("a2")
    deliveries = [
        asyncio.create_task(setup.deliver(agent, f"{agent}-e{i}", f"{agent}-m{i}"))
        for i in range(5)
        for agent in ("a1", "a2")
    ]
    await asyncio.sleep(0.01)
    setup.entities.gate.set()
    await asyncio.gather(*deliveries)
    assert (setup.handled("a1"), setup.handled("a2")) == (5, 5)
    assert 2 <= setup.batcher.operations_sent <= 4  # at most two per agent, never mixed
    for name, value in setup.entities.operations:
        if name == "handle_events":
            assert len({event["agent_id"] for event in value}) == 1


def test_handle_events_applies_the_valid_events_and_refuses_the_invalid() -> None:
    receipts = InMemoryDeliveryReceipts()
    entities = InMemoryEntities(AgentEntity(AgentKinds.builtin(), Limits()), receipts=receipts)
    spec = AgentSpec(agent_id="a1", purpose="Count")
    entities.run("a1", "configure", spec.model_dump(mode="json"))
    outcomes = entities.run(
        "a1",
        "handle_events",
        [
            {"event_id": "e1", "type": "tick"},
            {"event_id": "e2"},  # no type: not an event
            {"event_id": "e1", "type": "tick"},  # a repeat
            {"event_id": "e3", "type": "tick"},
        ],
    )
    assert [o["status"] for o in outcomes] == ["applied", "refused", "duplicate", "applied"]
    state = entities.state("a1")
    assert state is not None
    assert state["counters"]["events_handled"] == 2
