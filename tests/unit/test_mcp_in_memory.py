"""The MCP server's logic over the in-memory adapters: the SDK's own client connected in process
to the server the endpoint serves, driving the same AgentService as the HTTP API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client, types

from aos import AgentManager, LeadershipAgent
from aos.api.mcp import mcp_server

pytestmark = pytest.mark.asyncio


async def read_json(client: Client, uri: str) -> Any:
    (content,) = (await client.read_resource(uri)).contents
    assert isinstance(content, types.TextResourceContents)
    return json.loads(content.text)


async def test_resources_and_tools_over_the_in_memory_service() -> None:
    manager = AgentManager()
    manager.register_agent(LeadershipAgent("cfo", purpose="Keep the company financially healthy"))
    async with Client(mcp_server(manager.service)) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        assert listed == {"aos://agents/cfo/context", "aos://agents/cfo/history"}
        assert (await read_json(client, "aos://agents/cfo/context"))["agent_id"] == "cfo"

        added = await client.call_tool(
            "add_goal", {"agent_id": "cfo", "description": "Cut cloud costs", "id": "g1"}
        )
        assert not added.is_error, added.content
        sent = await client.call_tool(
            "send_event", {"agent_id": "cfo", "type": "invoice.paid", "event_id": "e1"}
        )
        assert not sent.is_error, sent.content
        missing = await client.call_tool("send_event", {"agent_id": "ghost", "type": "t"})
        assert missing.is_error

    # The event is queued as over HTTP; the manager delivers what is queued.
    await manager.deliver_queued()
    context = await read_json_after(manager)
    assert [g["id"] for g in context["goals"]] == ["g1"]
    assert context["counters"]["events_handled"] == 1


async def read_json_after(manager: AgentManager) -> dict[str, Any]:
    async with Client(mcp_server(manager.service)) as client:
        result: dict[str, Any] = await read_json(client, "aos://agents/cfo/context")
        return result
