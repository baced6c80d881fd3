"""The MCP endpoint's request checks, as the worker would invoke it (Core Tools runs it the same
way): JSON only (415), at most 64 KB (413), and outside Azure the SDK's DNS-rebinding protection
on Host and Origin."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator

import azure.functions as func
import pytest
import pytest_asyncio
from harness import Aos, running_aos

from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.asyncio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


@pytest_asyncio.fixture
async def aos(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[Aos]:
    async with running_aos(azurite.connection_string, unique_name) as running:
        yield running


async def post_mcp(aos: Aos, body: bytes | None = None, **headers: str) -> func.HttpResponse:
    all_headers = {
        "host": "localhost:7071",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    request = func.HttpRequest(
        method="POST",
        url="http://localhost:7071/api/mcp",
        headers=all_headers,
        params={},
        route_params={},
        body=json.dumps(INITIALIZE).encode() if body is None else body,
    )
    response: func.HttpResponse = await aos.host.invoke("mcp", req=request)
    return response


async def test_local_hosts_and_origins_are_served(aos: Aos) -> None:
    for host in ("localhost:7071", "127.0.0.1:7071", "[::1]:7071", "localhost"):
        response = await post_mcp(aos, host=host)
        assert response.status_code == 200, (host, response.get_body())
        assert json.loads(response.get_body())["result"]["serverInfo"]["name"]
    same_site = await post_mcp(aos, origin="http://localhost:7071")
    assert same_site.status_code == 200


async def test_foreign_host_or_origin_is_refused_locally(aos: Aos) -> None:
    rebound = await post_mcp(aos, host="attacker.example:7071")
    assert rebound.status_code == 421
    cross_site = await post_mcp(aos, origin="https://attacker.example")
    assert cross_site.status_code == 403
    sandboxed = await post_mcp(aos, origin="null")
    assert sandboxed.status_code == 403


async def test_configured_hosts_are_served_and_azure_relies_on_the_function_key(
    aos: Aos,
) -> None:
    settings = aos.runtime.settings
    aos.runtime.settings = dataclasses.replace(settings, local_allowed_hosts=("aos.test",))
    assert (await post_mcp(aos, host="aos.test:7071")).status_code == 200
    assert (await post_mcp(aos, origin="http://aos.test:7071")).status_code == 200
    assert (await post_mcp(aos, host="other.test")).status_code == 421
    aos.runtime.settings = dataclasses.replace(settings, in_azure=True)
    assert (await post_mcp(aos, host="func-aos.azurewebsites.net")).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_bodies_that_are_not_json_are_415(aos: Aos, content_type: str) -> None:
    response = await post_mcp(aos, content_type=content_type)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    problem = json.loads(response.get_body())
    assert problem["type"] == "urn:aos:problem:unsupported-media-type"


async def test_bodies_over_64_kb_are_413(aos: Aos) -> None:
    padded = {**INITIALIZE, "params": {**INITIALIZE["params"], "pad": "x" * 65_536}}  # type: ignore[dict-item]
    response = await post_mcp(aos, json.dumps(padded).encode())
    assert response.status_code == 413
    problem = json.loads(response.get_body())
    assert problem["type"] == "urn:aos:problem:payload-too-large"
    just_under = {**INITIALIZE, "params": {**INITIALIZE["params"], "pad": "x" * 60_000}}  # type: ignore[dict-item]
    assert (await post_mcp(aos, json.dumps(just_under).encode())).status_code == 200
