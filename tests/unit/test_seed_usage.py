"""The seed's own usage (docs: the perpetual-agents skill AOS re-builds), as written there: agents
created, initialised and driven in one Python process, registered with ``AgentManager()`` and
found again through it, with their state kept by their context server."""

from __future__ import annotations

from unittest.mock import AsyncMock

import pytest

from aos import AgentManager, ContextMCPServer, GenericPurposeDrivenAgent, LeadershipAgent

pytestmark = pytest.mark.asyncio


async def test_perpetual_agent_lifecycle() -> None:
    agent = GenericPurposeDrivenAgent(agent_id="test_agent", purpose="Testing", adapter_name="test")
    await agent.initialize()
    assert agent.context_server is not None  # ContextMCPServer created
    assert isinstance(agent.context_server, ContextMCPServer)
    await agent.update_state("test_key", "test_value")
    state = await agent.get_state("test_key")
    assert state == "test_value"
    await agent.cleanup()


async def test_purpose_alignment() -> None:
    agent = GenericPurposeDrivenAgent(
        agent_id="ceo",
        purpose="Strategic growth",
        purpose_scope="Major decisions",
        adapter_name="ceo",
    )
    await agent.initialize()
    action = {"type": "hire", "role": "engineer"}
    alignment = await agent.evaluate_purpose_alignment(action)
    assert isinstance(alignment, float)
    assert 0.0 <= alignment <= 1.0
    await agent.cleanup()


async def test_event_handling() -> None:
    agent = GenericPurposeDrivenAgent(
        agent_id="test", purpose="Event processing", adapter_name="test"
    )
    await agent.initialize()
    event = {"type": "test_event", "data": "test"}
    await agent.handle_event(event)
    last_event = await agent.get_state("last_event")
    assert last_event is not None
    await agent.cleanup()


async def test_agent_with_mocked_services() -> None:
    agent = GenericPurposeDrivenAgent(agent_id="test", purpose="Testing", adapter_name="test")
    agent.context_server = AsyncMock()
    agent.context_server.save_state = AsyncMock(return_value=True)
    agent.context_server.load_state = AsyncMock(return_value={})
    await agent.initialize()
    await agent.update_state("key", "value")
    agent.context_server.save_state.assert_called()


async def test_agent_registration_with_manager() -> None:
    manager = AgentManager()
    ceo_agent = LeadershipAgent(agent_id="ceo", purpose="Strategic oversight", adapter_name="ceo")
    await ceo_agent.initialize()
    manager.register_agent(ceo_agent)
    cfo_agent = LeadershipAgent(agent_id="cfo", purpose="Financial management", adapter_name="cfo")
    await cfo_agent.initialize()
    manager.register_agent(cfo_agent)

    assert manager.get_agent("ceo") is ceo_agent
    assert [a.agent_id for a in manager.list_agents()] == ["ceo", "cfo"]
    assert manager.get_agent("nobody") is None

    # Agents now run perpetually: events reach them through the manager, state persists.
    goal = {"description": "Strategic oversight of the new market", "id": "g1"}
    await manager.send_event("ceo", {"type": "goal.proposed", "data": goal})
    ceo = manager.get_agent("ceo")
    assert isinstance(ceo, LeadershipAgent)
    assert [g.id for g in await ceo.get_goals()] == ["g1"]
    assert await ceo.get_state("events_handled") == 1
    await ceo.update_state("quarter", "Q3")
    assert await manager.contexts.load_state(agent_id="ceo") is not None
    again = manager.get_agent("ceo")
    assert again is not None
    assert await again.get_state("quarter") == "Q3"
    page = await manager.contexts.history(agent_id="ceo")
    assert [r.kind for r in page.records] == ["event"]

    assert manager.deregister_agent("cfo")
    assert [a.agent_id for a in manager.list_agents()] == ["ceo"]
