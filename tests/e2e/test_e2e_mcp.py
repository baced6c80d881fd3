"""The MCP endpoint end to end: the `mcp` SDK's own client against the AOS app as a real process.

The app runs under `python -m devhost --no-azurite` over Azurite (`aos_host`); the client is the
SDK's streamable HTTP transport with a `ClientSession`, exactly what an MCP client application
uses. Agents are registered through the HTTP API; everything else goes through MCP. Events are
asynchronous, so their effects are awaited by bounded polling of the resources; nothing asserts
on timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aos_e2e_support import SETTLE_SECONDS, aos_host
from mcp import ClientSession, MCPError, types
from mcp.client.streamable_http import streamable_http_client
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from process_host import HostProcess

from devhost.azurite import REPO_ROOT

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e, pytest.mark.azurite]

T = TypeVar("T")

TOOLS = {
    "ask_agent",
    "get_turn",
    "send_event",
    "add_goal",
    "update_goal",
    "evaluate_alignment",
    "schedule_reminder",
    "cancel_reminder",
}
PURPOSE = "Keep the company financially healthy"
CFO = {
    "agent_id": "cfo",
    "purpose": PURPOSE,
    "purpose_scope": "Budgets, cash flow, pricing",
    "success_criteria": ["Positive cash flow"],
}


@pytest.fixture
def host(host_env: dict[str, str], tmp_path: Path) -> Iterator[HostProcess]:
    with aos_host(host_env, tmp_path / "devhost.log") as process:
        yield process


@asynccontextmanager
async def mcp_session(url: str, *, modern: bool = False) -> AsyncIterator[ClientSession]:
    """A client session on the endpoint at `url`, after the `initialize` handshake, or with
    `modern`, after `server/discover` (protocol 2026-07-28: no handshake, no session)."""
    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write) as session,
    ):
        if modern:
            await session.discover()
        else:
            await session.initialize()
        yield session


async def register(host: HostProcess, *agents: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=host.base_url, timeout=30.0) as http:
        for agent in agents:
            response = await http.post("/api/agents", json=agent)
            assert response.status_code == 201, response.text


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll `check` every 50 ms until it returns something truthy; fail after SETTLE_SECONDS."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {SETTLE_SECONDS:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


async def read_json(session: ClientSession, uri: str) -> Any:
    result = await session.read_resource(uri)
    (content,) = result.contents
    assert isinstance(content, types.TextResourceContents)
    assert (str(content.uri), content.mime_type) == (uri, "application/json")
    return json.loads(content.text)


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """A successful tool call's structured answer (its text content says the same)."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    (text,) = result.content
    assert isinstance(text, types.TextContent)
    assert json.loads(text.text) == result.structured_content
    return result.structured_content


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The message of a tool call that fails as a tool error (``isError``)."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result
    (text,) = result.content
    assert isinstance(text, types.TextContent)
    return text.text


async def test_resources_and_tools(host: HostProcess) -> None:
    await register(host, CFO, {"agent_id": "support", "purpose": "Resolve tickets politely"})
    async with mcp_session(f"{host.base_url}/api/mcp") as session:
        assert session.server_info is not None
        assert session.server_info.name == "aos"
        capabilities = session.server_capabilities
        assert capabilities is not None
        assert capabilities.tools
        assert capabilities.resources

        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert tool.description
            assert "agent" in tool.description
            assert "agent_id" in tool.input_schema["required"]
        assert tools["update_goal"].input_schema["required"] == ["agent_id", "goal_id"]

        listed = await session.list_resources()
        assert listed.next_cursor is None
        assert {str(r.uri) for r in listed.resources} == {
            f"aos://agents/{agent}/{part}"
            for agent in ("cfo", "support")
            for part in ("context", "history")
        }
        assert {r.mime_type for r in listed.resources} == {"application/json"}
        cfo_context = next(r for r in listed.resources if str(r.uri) == "aos://agents/cfo/context")
        assert PURPOSE in (cfo_context.description or "")
        templates = (await session.list_resource_templates()).resource_templates
        assert sorted(t.uri_template for t in templates) == [
            "aos://agents/{agent_id}/context",
            "aos://agents/{agent_id}/history",
        ]

        context = await read_json(session, "aos://agents/cfo/context")
        assert context["purpose"] == PURPOSE
        assert context["counters"]["events_handled"] == 0
        assert await read_json(session, "aos://agents/cfo/history") == {
            "value": [],
            "continuation": None,
            "next": None,
        }

        # send_event queues the event as POST .../events does; the agent shows it moments later.
        accepted = await call(
            session,
            "send_event",
            agent_id="cfo",
            type="invoice.paid",
            data={"amount": 1200, "currency": "EUR"},
            event_id="inv-1",
            correlation_id="corr-1",
            source="billing",
        )
        assert accepted["event_id"] == "inv-1"
        assert (accepted["status"], accepted["correlation_id"]) == ("queued", "corr-1")
        assert accepted["links"]["context"] == "aos://agents/cfo/context"

        async def handled() -> dict[str, Any] | None:
            context: dict[str, Any] = await read_json(session, "aos://agents/cfo/context")
            last = context["last_event"]
            return context if last and last["event_id"] == "inv-1" else None

        last = (await eventually(handled, "cfo to handle inv-1"))["last_event"]
        assert (last["type"], last["correlation_id"], last["source"]) == (
            "invoice.paid",
            "corr-1",
            "billing",
        )

        async def archived() -> dict[str, Any] | None:
            history: dict[str, Any] = await read_json(session, "aos://agents/cfo/history")
            return history if history["value"] else None

        history = await eventually(archived, "inv-1 in cfo's history")
        (item,) = history["value"]
        assert (item["kind"], item["event_id"], item["type"]) == ("event", "inv-1", "invoice.paid")
        assert item["payload"]["data"] == {"amount": 1200, "currency": "EUR"}
        assert (history["continuation"], history["next"]) == (None, None)

        # The history resource pages and filters with the HTTP route's query.
        for n in range(2, 5):
            await call(session, "send_event", agent_id="cfo", type="fx.update", event_id=f"fx-{n}")

        async def all_archived() -> dict[str, Any] | None:
            history: dict[str, Any] = await read_json(session, "aos://agents/cfo/history")
            return history if len(history["value"]) == 4 else None

        await eventually(all_archived, "four events in cfo's history")
        seen: list[str] = []
        uri: str | None = "aos://agents/cfo/history?limit=3"
        while uri is not None:
            page = await read_json(session, uri)
            seen += [i["event_id"] for i in page["value"]]
            uri = page["next"]
        assert seen == ["fx-4", "fx-3", "fx-2", "inv-1"]
        paid = await read_json(session, "aos://agents/cfo/history?type=invoice.paid&kind=event")
        assert [i["event_id"] for i in paid["value"]] == ["inv-1"]

        # Without an event_id one is made up, and the correlation id is the request's.
        generated = await call(session, "send_event", agent_id="support", type="ticket.opened")
        assert len(generated["event_id"]) == 32
        assert generated["correlation_id"]

        # Goals: added, changed, and visible in the context.
        added = await call(
            session, "add_goal", agent_id="cfo", id="runway", description="Extend runway"
        )
        assert (added["goal"]["id"], added["goal"]["status"], added["status"]) == (
            "runway",
            "pending",
            "applied",
        )
        changed = await call(
            session,
            "update_goal",
            agent_id="cfo",
            goal_id="runway",
            status="in_progress",
            progress=0.4,
        )
        assert (changed["goal"]["status"], changed["goal"]["progress"]) == ("in_progress", 0.4)
        goals = (await read_json(session, "aos://agents/cfo/context"))["goals"]
        assert [(g["id"], g["status"], g["progress"]) for g in goals] == [
            ("runway", "in_progress", 0.4)
        ]

        aligned = await call(
            session,
            "evaluate_alignment",
            agent_id="cfo",
            action="improve cash flow by invoicing faster",
        )
        assert 0.0 < aligned["score"] <= 1.0
        assert aligned["reasons"]
        assert "cash" in aligned["matched_terms"]
        unrelated = await call(
            session,
            "evaluate_alignment",
            agent_id="cfo",
            action={"type": "paint", "what": "a mural"},
        )
        assert 0.0 <= unrelated["score"] < aligned["score"]


async def test_reminder_tools(host: HostProcess) -> None:
    await register(host, {"agent_id": "planner", "purpose": "Plan the week"})
    async with mcp_session(f"{host.base_url}/api/mcp") as session:
        later = {"type": "review", "data": {"what": "budget"}, "after_seconds": 3600}
        made = await call(
            session, "schedule_reminder", agent_id="planner", reminder_id="weekly", **later
        )
        assert (made["created"], made["status"]) == (True, "applied")
        assert made["reminder"]["reminder_id"] == "weekly"
        again = await call(
            session, "schedule_reminder", agent_id="planner", reminder_id="weekly",
            **{**later, "every_seconds": 604800},
        )  # fmt: skip
        assert again["created"] is False
        assert again["reminder"]["every_seconds"] == 604800
        context = await read_json(session, "aos://agents/planner/context")
        assert [r["reminder_id"] for r in context["reminders"]] == ["weekly"]
        gone = await call(session, "cancel_reminder", agent_id="planner", reminder_id="weekly")
        assert gone["status"] == "cancelled"
        error = await call_error(
            session, "cancel_reminder", agent_id="planner", reminder_id="weekly"
        )
        assert "no reminder" in error


async def test_ask_agent_starts_a_turn_and_answers_its_reply(host: HostProcess) -> None:
    """With no model configured the local host's offline model answers: a message that starts
    with a tool's name calls it (here update_state), then it replies with the result."""
    await register(host, {"agent_id": "clerk", "purpose": "Keep the books tidy"})
    async with mcp_session(f"{host.base_url}/api/mcp") as session:
        turn = await call(
            session, "ask_agent", agent_id="clerk",
            message='update_state key=ledger value="balanced"', message_id="ask-1",
        )  # fmt: skip
        assert turn["status"] == "completed", turn
        assert turn["offline"] is True
        assert turn["tool_calls"][0]["name"] == "update_state"
        assert "update_state" in turn["reply"]
        context = await read_json(session, "aos://agents/clerk/context")
        assert context["state"] == {"ledger": "balanced"}
        assert context["turns"]["completed"] == 1
        again = await call(session, "get_turn", agent_id="clerk", turn_id=turn["turn_id"])
        assert again["reply"] == turn["reply"]
        missing = await call_error(
            session, "get_turn", agent_id="clerk", turn_id="turn-" + "0" * 32
        )
        assert "has no turn" in missing


async def test_errors_are_mcp_errors(host: HostProcess) -> None:
    await register(host, CFO)
    async with mcp_session(f"{host.base_url}/api/mcp") as session:
        # Tool calls that fail are tool results with isError and a message saying why.
        unknown = await call_error(session, "send_event", agent_id="nobody", type="x.y")
        assert "'nobody' is not registered" in unknown
        assert "not registered" in await call_error(
            session, "evaluate_alignment", agent_id="nobody", action="anything"
        )
        invalid = await call_error(session, "add_goal", agent_id="cfo", description="d", progress=2)
        assert "progress" in invalid
        assert "colour" in await call_error(
            session, "send_event", agent_id="cfo", type="x.y", colour="red"
        )
        assert "agent_id" in await call_error(session, "send_event", agent_id="bad id!", type="x")
        assert "does not exist" in await call_error(
            session, "update_goal", agent_id="cfo", goal_id="nope", status="achieved"
        )
        assert "at least one" in await call_error(
            session, "update_goal", agent_id="cfo", goal_id="nope"
        )
        with pytest.raises(MCPError) as no_tool:
            await session.call_tool("delete_everything", {})
        assert no_tool.value.code == types.INVALID_PARAMS

        # Resources that do not exist are MCP errors, and the session carries on.
        for uri in (
            "aos://agents/nobody/context",
            "aos://agents/nobody/history",
            "aos://agents/cfo/secrets",
            "aos://agents/bad%20id/context",
            "aos://agents/cfo/history?limit=0",
            "aos://agents/cfo/context?limit=1",
        ):
            with pytest.raises(MCPError) as missing:
                await session.read_resource(uri)
            assert missing.value.code == types.INVALID_PARAMS, uri
            assert missing.value.data == {"uri": uri}
        with pytest.raises(MCPError) as bad_cursor:
            await session.list_resources(params=types.PaginatedRequestParams(cursor="not-a-cursor"))
        assert bad_cursor.value.code == types.INVALID_PARAMS
        assert (await read_json(session, "aos://agents/cfo/context"))["agent_id"] == "cfo"


async def test_other_paths_protocols_and_methods(host: HostProcess) -> None:
    """Locally the endpoint also answers where the Functions MCP extension serves in Azure; both
    protocol eras of the SDK work; methods other than POST are refused."""
    await register(host, CFO)
    async with mcp_session(f"{host.base_url}/runtime/webhooks/mcp") as session:
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
        context = await read_json(session, "aos://agents/cfo/context")
        assert context["agent_id"] == "cfo"

    async with mcp_session(f"{host.base_url}/api/mcp", modern=True) as session:
        assert session.protocol_version in MODERN_PROTOCOL_VERSIONS
        aligned = await call(session, "evaluate_alignment", agent_id="cfo", action="cash flow")
        assert 0.0 < aligned["score"] <= 1.0
        assert (await read_json(session, "aos://agents/cfo/history"))["value"] == []

    async with httpx.AsyncClient(base_url=host.base_url, timeout=30.0) as http:
        # A stateless endpoint offers no server-to-client stream and no sessions to end.
        for method in ("GET", "DELETE"):
            refused = await http.request(method, "/api/mcp")
            assert refused.status_code == 405, refused.text
            assert refused.headers["allow"] == "POST"
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        answered = await http.post(
            "/api/mcp",
            json=ping,
            headers={"accept": "application/json", "x-correlation-id": "mcp-1"},
        )
        assert answered.status_code == 200, answered.text
        assert answered.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}
        assert answered.headers["x-correlation-id"] == "mcp-1"


async def test_the_readme_python_client_runs(host: HostProcess) -> None:
    """README.md's MCP section: its Python client, as written, against the local host."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## MCP\n", 1)[1].split("\n## ", 1)[0]
    (snippet,) = re.findall(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    await register(host, CFO)
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        snippet,
        env={**os.environ, "AOS_MCP_URL": f"{host.base_url}/api/mcp"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(client.communicate(), SETTLE_SECONDS)
    assert client.returncode == 0, err.decode()
    tools, context, scored = out.decode().splitlines()
    assert set(json.loads(tools.replace("'", '"'))) == TOOLS
    assert json.loads(context)["agent_id"] == "cfo"
    assert "'score'" in scored
