"""README's "Thinking agents" curl commands work as written against the AOS app under
`python -m devhost` with the offline model (what `make run` serves): each runs with the real
`curl`, only `localhost:7071` changed to the test host's port, and answers 2xx. A reader waits for
the turn to ask for approval before approving it; so does the test. Afterwards the turn the README
approved is completed, its `send` reached the supplier, and the buyer keeps what it was told."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from aos_e2e_support import aos_host
from readme_commands import readme_section_curl_commands, run_curl

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]


def turn_in(client: httpx.Client, path: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        response = client.get(path)
        if response.status_code == 200 and response.json()["status"] in statuses:
            turn: dict[str, Any] = response.json()
            return turn
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)


def test_readme_thinking_examples_run_in_order(host_env: dict[str, str], tmp_path: Path) -> None:
    assert shutil.which("curl"), "the curl binary is needed"
    commands = readme_section_curl_commands("Thinking agents")
    assert len(commands) >= 8, [c.text for c in commands]
    with (
        aos_host(host_env, tmp_path / "devhost.log") as host,
        httpx.Client(base_url=host.base_url, timeout=15.0) as client,
    ):
        approved_turn = None
        for command in commands:
            if command.path.endswith("/approval"):
                approved_turn = command.path.removesuffix("/approval")
                turn_in(client, approved_turn, {"waiting_approval"})
            code, status, body = run_curl(command, host.port)
            assert code == 0, command.text
            assert 200 <= status < 300, (command.text, status, body)
        assert approved_turn is not None, "the README approves no tool call"
        done = turn_in(client, approved_turn, {"completed", "failed"})
        assert done["status"] == "completed", done
        assert done["tool_calls"][0]["name"] == "send"
        assert done["offline"] is True
        supplier = client.get("/api/agents/supplier").json()
        deadline = time.monotonic() + 30
        while supplier["last_event"] is None:
            assert time.monotonic() < deadline, supplier
            time.sleep(0.1)
            supplier = client.get("/api/agents/supplier").json()
        assert supplier["last_event"]["type"] == "order.placed"
        assert supplier["last_event"]["data"] == {"item": "widget", "quantity": 40}
        buyer = client.get("/api/agents/buyer").json()
        assert buyer["state"] == {"widgets_in_stock": 12}
        assert buyer["turns"]["completed"] == 2
