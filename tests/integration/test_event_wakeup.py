"""An event POSTed over HTTP is picked up at once, however long the host's queue polling has
backed off: the HTTP functions hand the events a request sent to their queue output binding, and
the host, as the queues extension does (``SharedQueueWatcher`` → ``QueueListener.Notify``), tells
its listener for that queue to poll now."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import azure.functions as func
import pytest
from harness import running_aos

from aos.adapters.outbox import invocation_outbox
from devhost import Azurite, queue_listener  # the module, to slow its polling down
from devhost.storage_names import UniqueName

pytestmark = [pytest.mark.asyncio, pytest.mark.azurite]


async def eventually(check: Callable[[], Awaitable[bool]], limit: float = 20.0) -> None:
    async with asyncio.timeout(limit):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def test_an_event_posted_over_http_wakes_the_queue_listener(
    azurite: Azurite, unique_name: UniqueName, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_listener, "MIN_POLL", 3600.0)  # else: one poll an hour
    async with running_aos(azurite.connection_string, unique_name, queues=True) as aos:
        await aos.register("a1")
        await aos.register("s1", subscriptions=["tick"])

        async def handled(agent_id: str, count: int) -> bool:
            context = (await aos.call("GET", f"agents/{agent_id}")).json
            return bool(context["counters"]["events_handled"] == count)

        for n in (1, 2):  # the second after the listener went back to waiting
            body = {"event_id": f"e{n}", "type": "t"}
            assert (await aos.call("POST", "agents/a1/events", body)).status == 202
            await eventually(lambda n=n: handled("a1", n))  # type: ignore[misc]
        published = await aos.call("POST", "events", {"event_id": "b1", "type": "tick"})
        assert published.status == 202
        await eventually(lambda: handled("s1", 1))


async def test_an_event_sent_over_mcp_wakes_the_queue_listener(
    azurite: Azurite, unique_name: UniqueName, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MCP function has the same queue output binding: ``send_event`` wakes an idle app."""
    monkeypatch.setattr(queue_listener, "MIN_POLL", 3600.0)
    async with running_aos(azurite.connection_string, unique_name, queues=True) as aos:
        await aos.register("a1")
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": "send_event",
                "arguments": {"agent_id": "a1", "event_id": "m1", "type": "t"},
            },
        }
        request = func.HttpRequest(
            method="POST",
            url="http://localhost:7071/api/mcp",
            headers={
                "host": "localhost:7071",
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
            },
            body=json.dumps(call).encode(),
        )
        answer: func.HttpResponse = await aos.host.invoke("mcp", req=request)
        assert answer.status_code == 200, answer.get_body()
        assert '"isError":false' in answer.get_body().decode().replace(" ", "")

        async def handled() -> bool:
            context = (await aos.call("GET", "agents/a1")).json
            return bool(context["counters"]["events_handled"] == 1)

        await eventually(handled)


async def test_flush_sends_what_the_invocation_holds_back(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    """Inside an invocation the events wait for its output binding; ``flush`` (called before
    waiting for an event's effect, as ``ask_agent`` does) puts them on the queue at once."""
    async with running_aos(azurite.connection_string, unique_name) as aos:
        queue = aos.runtime.storage().queue
        with invocation_outbox() as held:
            await queue.send(message='{"n": 1}')
            await queue.send(message='{"n": 2}')
            assert await aos.queued() == []
            await queue.flush()
            assert held.messages == []
            assert await aos.queued() == ['{"n": 1}', '{"n": 2}']
            await queue.send(message='{"n": 3}')
        assert held.messages == ['{"n": 3}']  # for the binding
        await queue.flush()  # outside an invocation: nothing held, nothing to do
        assert await aos.queued() == []
