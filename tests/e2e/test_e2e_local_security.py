"""The local host refuses what a web page could send it, as a real `python -m devhost` process:
a foreign Host (DNS rebinding) or a foreign Origin (a cross-site request) gets 403 problem+json,
on the app's routes and the durable webhooks alike; loopback names and configured hosts work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aos_e2e_support import PROBLEM_JSON, aos_host

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

AGENT = {"agent_id": "cfo", "purpose": "Keep the company financially healthy"}


@pytest.fixture
def client(host_env: dict[str, str], tmp_path: Path) -> Iterator[httpx.Client]:
    env = {**host_env, "AOS_DEVHOST_ALLOWED_HOSTS": "aos.test, Build-Box"}
    with (
        aos_host(env, tmp_path / "devhost.log") as host,
        httpx.Client(base_url=host.base_url, timeout=15.0) as http,
    ):
        yield http


def test_loopback_and_configured_hosts_are_served(client: httpx.Client) -> None:
    port = client.base_url.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host
    for host in (f"aos.test:{port}", "build-box"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host


def test_foreign_host_is_refused(client: httpx.Client) -> None:
    port = client.base_url.port
    for path in ("/api/health", "/api/agents", "/runtime/webhooks/durabletask/entities/agent/x"):
        response = client.get(path, headers={"Host": f"rebind.attacker.example:{port}"})
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert response.json()["type"] == "urn:aos:problem:forbidden-host"
    posted = client.post(
        "/api/agents", json=AGENT, headers={"Host": f"rebind.attacker.example:{port}"}
    )
    assert posted.status_code == 403
    assert client.get("/api/agents/cfo").status_code == 404  # nothing was written


def test_cross_site_origin_is_refused(client: httpx.Client) -> None:
    for origin in ("https://attacker.example", "http://localhost.attacker.example", "null"):
        response = client.post("/api/agents", json=AGENT, headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert response.json()["type"] == "urn:aos:problem:forbidden-origin"
    assert client.get("/api/agents/cfo").status_code == 404
    port = client.base_url.port
    same_site = client.post(
        "/api/agents", json=AGENT, headers={"Origin": f"http://localhost:{port}"}
    )
    assert same_site.status_code == 201, same_site.text


def test_mcp_refuses_non_json_and_large_bodies(client: httpx.Client) -> None:
    form = client.post(
        "/api/mcp", content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 415
    assert form.headers["content-type"] == PROBLEM_JSON
    large = client.post(
        "/api/mcp",
        content=b"{" + b" " * 70_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert large.status_code == 413
