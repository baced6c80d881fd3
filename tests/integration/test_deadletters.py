"""Dead letters and poison messages through the API: recorded by the real queue functions, listed
newest first, paged, read, replayed once, on real Azurite."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import pytest
import pytest_asyncio
from azure.data.tables.aio import TableServiceClient
from azure.functions.queue import QueueMessage as FuncQueueMessage
from azure.storage.queue.aio import QueueClient
from harness import Aos, running_aos, settings_for

from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.asyncio

PROBLEM = "application/problem+json"
T = TypeVar("T")


@pytest_asyncio.fixture
async def aos(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[Aos]:
    async with running_aos(azurite.connection_string, unique_name) as running:
        yield running


def envelope(agent_id: str, event_id: str, event_type: str = "invoice.paid") -> str:
    event = {"agent_id": agent_id, "type": event_type, "event_id": event_id, "data": {"n": 1}}
    return json.dumps({"version": 1, "target": "agent", "event": event})


async def eventually(check: Callable[[], Awaitable[T]], limit: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``limit`` seconds."""
    async with asyncio.timeout(limit):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.1)


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


async def test_dead_letter_is_listed_paged_read_and_replayed_once(aos: Aos) -> None:
    await aos.deliver("not json at all", message_id="m-1")
    await aos.deliver(envelope("late", "evt-late"), message_id="m-2")
    await aos.deliver(b"\xff\xfe", message_id="m-3")
    assert len(await aos.queued(aos.settings.deadletter_queue)) == 3  # the queue still gets them

    listed = await aos.call("GET", "deadletters")
    assert listed.status == 200, listed.text
    assert listed.json["nextLink"] is None
    items = listed.json["value"]
    assert [i["message_id"] for i in items] == ["m-3", "m-2", "m-1"]  # newest first
    late = items[1]
    assert late["queue"] == "deadletter"
    assert "'late' is not registered" in late["reason"]
    assert late["original"] == envelope("late", "evt-late")
    assert (late["event_id"], late["agent_id"], late["type"]) == (
        "evt-late",
        "late",
        "invoice.paid",
    )
    assert late["dequeue_count"] == 1
    assert late["dead_lettered_at"].endswith("Z")
    assert set(late) == {
        "id", "queue", "reason", "errors", "original", "message_id", "dequeue_count",
        "dead_lettered_at", "event_id", "agent_id", "type",
    }  # fmt: skip
    garbage = items[2]
    assert garbage["errors"]
    assert garbage["event_id"] is None
    assert garbage["type"] is None

    # paging: limit 2, then the nextLink's continuation
    first = await aos.call("GET", "deadletters", params={"limit": "2"})
    assert [i["id"] for i in first.json["value"]] == [items[0]["id"], items[1]["id"]]
    next_link = first.json["nextLink"]
    assert next_link.startswith("http://localhost:7071/api/deadletters?")
    second = await aos.call("GET", "deadletters", params=query_of(next_link))
    assert [i["id"] for i in second.json["value"]] == [items[2]["id"]]
    assert second.json["nextLink"] is None
    assert (await aos.call("GET", "deadletters", params={"limit": "201"})).status == 400
    bad_token = await aos.call("GET", "deadletters", params={"continuation": "xyz"})
    assert bad_token.status == 400

    one = await aos.call("GET", f"deadletters/{late['id']}")
    assert one.status == 200
    assert one.json == late
    assert (await aos.call("GET", f"poison/{late['id']}")).status == 404  # another queue
    missing = await aos.call("GET", "deadletters/nope")
    assert missing.status == 404
    assert missing.content_type == PROBLEM

    # fix the cause, then replay: the original goes back unchanged and is applied
    await aos.register("late")
    replayed = await aos.call("POST", f"deadletters/{late['id']}/replay")
    assert replayed.status == 202, replayed.text
    assert replayed.json == {"id": late["id"], "status": "replayed", "event_id": "evt-late"}
    (text,) = await aos.queued()
    assert text == late["original"]
    await aos.deliver(text)
    context = (await aos.call("GET", "agents/late")).json
    assert context["counters"]["events_handled"] == 1
    assert [e["event_id"] for e in context["recent_events"]] == ["evt-late"]

    again = await aos.call("POST", f"deadletters/{late['id']}/replay")
    assert again.status == 404
    assert again.content_type == PROBLEM
    assert again.json["type"] == "urn:aos:problem:not-found"
    assert await aos.queued() == []
    remaining = (await aos.call("GET", "deadletters")).json["value"]
    assert [i["message_id"] for i in remaining] == ["m-3", "m-1"]


async def test_replaying_an_invalid_original_dead_letters_it_again(aos: Aos) -> None:
    await aos.deliver("not json at all", message_id="m-1")
    (letter,) = (await aos.call("GET", "deadletters")).json["value"]
    replayed = await aos.call("POST", f"deadletters/{letter['id']}/replay")
    assert replayed.json == {"id": letter["id"], "status": "replayed", "event_id": None}
    assert await aos.deliver_queued() == 1
    (again,) = (await aos.call("GET", "deadletters")).json["value"]
    assert again["id"] != letter["id"]
    assert (again["original"], again["reason"]) == (letter["original"], letter["reason"])


async def test_poison_message_is_recorded_then_replayed(aos: Aos) -> None:
    await aos.register("cfo")
    original = envelope("cfo", "evt-poison")
    # What the host does after maxDequeueCount failures: the message lands on <events>-poison,
    # whose queue function records it.
    poisoned = FuncQueueMessage(  # type: ignore[no-untyped-call]
        id="p-1", body=original.encode(), dequeue_count=1
    )
    await aos.host.invoke("record_poison", msg=poisoned)

    (item,) = (await aos.call("GET", "poison")).json["value"]
    assert item["queue"] == "poison"
    assert item["original"] == original
    assert item["message_id"] == "p-1"
    assert aos.settings.events_queue in item["reason"]
    assert (item["event_id"], item["agent_id"]) == ("evt-poison", "cfo")
    assert (await aos.call("GET", f"poison/{item['id']}")).json == item
    assert (await aos.call("GET", "deadletters")).json["value"] == []

    replayed = await aos.call("POST", f"poison/{item['id']}/replay")
    assert replayed.status == 202
    assert replayed.json["event_id"] == "evt-poison"
    assert await aos.deliver_queued() == 1
    counters = (await aos.call("GET", "agents/cfo")).json["counters"]
    assert counters["events_handled"] == 1
    assert (await aos.call("POST", f"poison/{item['id']}/replay")).status == 404
    assert (await aos.call("GET", "poison")).json["value"] == []


async def test_letter_routes_are_in_the_openapi_document(aos: Aos) -> None:
    paths = (await aos.call("GET", "openapi.json")).json["paths"]
    for base in ("deadletters", "poison"):
        assert set(paths[f"/{base}"]) == {"get"}
        assert set(paths[f"/{base}/{{letter_id}}"]) == {"get"}
        replay = paths[f"/{base}/{{letter_id}}/replay"]["post"]
        assert set(replay["responses"]) == {"202", "400", "404", "422"}


async def test_a_message_that_keeps_failing_reaches_the_poison_api(
    azurite: Azurite, unique_name: UniqueName, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole poison path with the host's own queue polling: an event whose delivery receipts
    cannot be written (the history table was deleted under the app) fails maxDequeueCount (2 here)
    times, the host moves it to <events>-poison, record_poison records it; once the table is back,
    replaying it delivers it."""
    settings = settings_for(azurite.connection_string, unique_name)
    monkeypatch.setenv("AOS_EVENTS_QUEUE", settings.events_queue)
    async with running_aos(azurite.connection_string, unique_name, queues=True) as aos:
        await aos.register("slow")
        first = {"event_id": "evt-first", "type": "t"}
        assert (await aos.call("POST", "agents/slow/events", first)).status == 202

        async def counted(n: int) -> bool:
            context = (await aos.call("GET", "agents/slow")).json
            return bool(context["counters"]["events_handled"] == n)

        await eventually(lambda: counted(1))  # the receipts' table is known to the app now
        async with TableServiceClient.from_connection_string(aos.connection_string) as tables:
            await tables.delete_table(settings.history_table)
        async with QueueClient.from_connection_string(
            aos.connection_string, settings.events_queue
        ) as events:
            await events.send_message(envelope("slow", "evt-slow"))

        async def poisoned() -> list[dict[str, Any]]:
            return list((await aos.call("GET", "poison")).json["value"])

        (item,) = await eventually(poisoned)
        assert item["event_id"] == "evt-slow"
        assert item["original"] == envelope("slow", "evt-slow")

        async with TableServiceClient.from_connection_string(aos.connection_string) as tables:
            await tables.create_table(settings.history_table)  # storage is back
        assert (await aos.call("POST", f"poison/{item['id']}/replay")).status == 202

        await eventually(lambda: counted(2))
        assert (await aos.call("GET", "poison")).json["value"] == []
