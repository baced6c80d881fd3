"""HTTP triggers served over real HTTP, and queue triggers polled from Azurite."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from azure.storage.queue import QueueClient
from helpers import eventually, fast_config, run, sample_host

from devhost.azurite import Azurite
from devhost.routes import compile_route
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.azurite


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("items/{id}", "/api/items/42", {"id": "42"}),
        ("items/{id}", "/api/ITEMS/42/", {"id": "42"}),
        ("items/{id}/{part?}", "/api/items/42", {"id": "42"}),
        ("items/{id}/{part?}", "/api/items/42/x", {"id": "42", "part": "x"}),
        ("items/{id:int}", "/api/items/abc", None),
        ("files/{*rest}", "/api/files/a/b", {"rest": "a/b"}),
        ("items/{id}", "/api/items", None),
        ("v{version}/x", "/api/v2/x", {"version": "2"}),
    ],
)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert compile_route(template).match(path) == expected


def test_http_requests_reach_functions(azurite: Azurite, unique_name: UniqueName) -> None:
    async def scenario() -> None:
        async with (
            sample_host(azurite.connection_string, unique_name.table_name("Hub")) as host,
            httpx.AsyncClient(base_url=host.base_url) as http,
        ):
            echo = await http.post(
                "/api/items/7/detail?a=1&b=two", content=b"payload", headers={"X-Test": "yes"}
            )
            assert echo.status_code == 200
            assert echo.headers["content-type"].startswith("application/json")
            body = echo.json()
            assert body["method"] == "POST"
            assert body["route"] == {"item_id": "7", "part": "detail"}
            assert body["query"] == {"a": "1", "b": "two"}
            assert body["header"] == "yes"
            assert body["body"] == "payload"
            special = await http.get("/api/items/special")
            assert special.text == "special"
            assert special.headers["content-type"] == "text/x-special"
            wrong_method = await http.delete("/api/items/7")
            assert wrong_method.status_code == 405
            assert wrong_method.headers["content-type"].startswith("application/problem+json")
            assert wrong_method.json()["type"] == "urn:aos:problem:method-not-allowed"
            missing = await http.get("/api/nothing/here")
            assert missing.status_code == 404
            assert missing.headers["content-type"].startswith("application/problem+json")
            assert missing.json()["type"] == "urn:aos:problem:not-found"
            failed = await http.get("/api/fail")
            assert failed.status_code == 500

    run(scenario())


def test_durable_client_in_http_functions(azurite: Azurite, unique_name: UniqueName) -> None:
    async def scenario() -> None:
        async with (
            sample_host(azurite.connection_string, unique_name.table_name("Hub")) as host,
            httpx.AsyncClient(base_url=host.base_url) as http,
        ):
            assert (await http.get("/api/counters/c1")).status_code == 404
            for amount in (1, 2, 3):
                assert (await http.post("/api/counters/c1", json=amount)).status_code == 202
            await host.wait_idle()
            state = (await http.get("/api/counters/c1")).json()
            assert state["seen"] == [1, 2, 3]
            refused = await http.post("/api/orchestrations/hello")  # no such orchestrator
            assert refused.status_code == 501
            assert "hello" in refused.text

    run(scenario())


def test_queue_messages_signal_entities_and_are_deleted(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    queue_name = unique_name.queue
    with QueueClient.from_connection_string(azurite.connection_string, queue_name) as queue:
        queue.create_queue()
        for amount in range(1, 31):
            queue.send_message(json.dumps({"key": "q1", "amount": amount}))

    async def scenario() -> None:
        async with sample_host(
            azurite.connection_string, unique_name.table_name("Hub"), queue_name
        ) as host:
            listener = host.listeners[0]
            await eventually(lambda: _true(listener.processed == 30))
            await host.wait_idle()
            async with httpx.AsyncClient(base_url=host.base_url) as http:
                state = (await http.get("/api/counters/q1")).json()
            # Queue order is not guaranteed; each message is applied once.
            assert sorted(state["seen"]) == list(range(1, 31))

    run(scenario())
    with QueueClient.from_connection_string(azurite.connection_string, queue_name) as queue:
        assert queue.get_queue_properties().approximate_message_count == 0


def test_failing_message_is_retried_then_poisoned(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    queue_name = unique_name.queue
    with QueueClient.from_connection_string(azurite.connection_string, queue_name) as queue:
        queue.create_queue()
        queue.send_message(json.dumps({"fail": True}))

    async def scenario() -> None:
        host = sample_host(
            azurite.connection_string,
            unique_name.table_name("Hub"),
            queue_name,
            config=fast_config(max_dequeue_count=3),
        )
        async with host:
            listener = host.listeners[0]
            await eventually(lambda: _true(listener.poisoned == 1))

    run(scenario())
    poison = QueueClient.from_connection_string(azurite.connection_string, f"{queue_name}-poison")
    with poison:
        messages = list(poison.receive_messages())
    assert [json.loads(m.content) for m in messages] == [{"fail": True}]
    with QueueClient.from_connection_string(azurite.connection_string, queue_name) as queue:
        assert queue.get_queue_properties().approximate_message_count == 0


async def _true(value: Any) -> bool:
    await asyncio.sleep(0)
    return bool(value)
