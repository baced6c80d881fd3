"""Reminders under `python -m devhost` (the app: tests/e2e/acting_e2e_app.py): durable
orchestrations started from the events queue, fired through the agent entity. Counts are
asserted, never timings; every wait is bounded."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aos_e2e_support import wait_for, wait_for_quiet
from process_host import HostProcess

from devhost.azurite import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

TESTS = Path(__file__).resolve().parent.parent


def _host(host_env: dict[str, str], tmp_path: Path) -> HostProcess:
    root = tmp_path / "app"
    root.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "host.json", root / "host.json")
    env = {**host_env, "PYTHONPATH": str(TESTS / "e2e")}
    return HostProcess(
        env, tmp_path / "devhost.log", ["--root", str(root), "--app", "acting_e2e_app"]
    )


@pytest.fixture
def host(host_env: dict[str, str], tmp_path: Path) -> Iterator[HostProcess]:
    process = _host(host_env, tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _register(client: httpx.Client, agent_id: str) -> None:
    body = {"agent_id": agent_id, "kind": "sleeper", "purpose": "Wake up on time"}
    response = client.post("/api/agents", json=body)
    assert response.status_code == 201, response.text


def _post(client: httpx.Client, agent_id: str, type_: str, **data: Any) -> None:
    response = client.post(f"/api/agents/{agent_id}/events", json={"type": type_, "data": data})
    assert response.status_code == 202, response.text


def _fired(client: httpx.Client, agent_id: str) -> list[dict[str, Any]]:
    response = client.get(
        f"/api/agents/{agent_id}/history", params={"kind": "reminder_fired", "limit": "100"}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["value"]
    return items


def test_a_reminder_every_2_seconds_fires_n_times_then_never_again(
    host: HostProcess, host_env: dict[str, str]
) -> None:
    with httpx.Client(base_url=host.base_url, timeout=15.0) as client:
        _register(client, "ticker")
        _post(client, "ticker", "remind", id="tick", after=2, every=2, stop=3)
        wait_for(lambda: len(_fired(client, "ticker")) >= 3, "three wake-ups", limit=60)
        wait_for_quiet(host_env, "ticker")
        time.sleep(4)  # two more intervals: a cancelled reminder stays silent
        wait_for_quiet(host_env, "ticker")
        fired = _fired(client, "ticker")
        assert len(fired) == 3
        assert len({f["event_id"] for f in fired}) == 3
        assert client.get("/api/agents/ticker").json()["state"]["wakes"] == 3


def test_a_cancelled_reminder_never_fires(host: HostProcess, host_env: dict[str, str]) -> None:
    with httpx.Client(base_url=host.base_url, timeout=15.0) as client:
        _register(client, "sleeper")

        def reminder_ids() -> list[str]:
            listed = client.get("/api/agents/sleeper/reminders").json()["value"]
            return [r["reminder_id"] for r in listed]

        # Queued events may be delivered in any order: each step waits for the one before.
        _post(client, "sleeper", "remind", id="nap", after=3)
        wait_for(lambda: reminder_ids() == ["nap"], "the reminder set")
        _post(client, "sleeper", "cancel", id="nap")
        wait_for(lambda: reminder_ids() == [], "the reminder cancelled")
        _post(client, "sleeper", "remind", id="witness", after=5)  # fires after `nap` would
        wait_for(lambda: _fired(client, "sleeper"), "the witness reminder", limit=60)
        wait_for_quiet(host_env, "sleeper")
        (fired,) = _fired(client, "sleeper")
        assert fired["payload"]["reminder_id"] == "witness"


def test_a_one_shot_reminder_survives_a_killed_host_and_fires_once(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    host = _host(host_env, tmp_path)
    host.start()
    try:
        with httpx.Client(base_url=host.base_url, timeout=15.0) as client:
            _register(client, "phoenix")
            _post(client, "phoenix", "remind", id="rise", after=5)

            def scheduled() -> bool:
                context = client.get("/api/agents/phoenix").json()
                return bool(context.get("reminders"))

            wait_for(scheduled, "the reminder in the agent's context")
            time.sleep(2)
        host.kill()  # SIGKILL, about 2 s after the reminder was set
        time.sleep(8)  # down past its due time
        host.start()
        with httpx.Client(base_url=host.base_url, timeout=15.0) as client:
            wait_for(lambda: _fired(client, "phoenix"), "the reminder after the restart", limit=60)
            wait_for_quiet(host_env, "phoenix")
            time.sleep(3)
            assert len(_fired(client, "phoenix")) == 1
            assert client.get("/api/agents/phoenix").json()["state"]["wakes"] == 1
    finally:
        host.stop()


def test_reminders_over_http_are_the_agents_own(
    host: HostProcess, host_env: dict[str, str]
) -> None:
    with httpx.Client(base_url=host.base_url, timeout=15.0) as client:
        _register(client, "clock")
        url = "/api/agents/clock/reminders"
        far = {"type": "wake", "data": {"id": "later"}, "after_seconds": 3600}
        created = client.put(f"{url}/later", json=far)
        assert created.status_code == 201, created.text
        assert created.headers["location"].endswith(f"{url}/later")
        assert created.json()["reminder_id"] == "later"
        replaced = client.put(f"{url}/later", json={**far, "every_seconds": 7200})
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["version"] != created.json()["version"]
        soon = {"type": "wake", "data": {"id": "soon"}, "after_seconds": 1}
        assert client.put(f"{url}/soon", json=soon).status_code == 201

        listed = client.get(url)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["nextLink"] is None
        assert sorted(r["reminder_id"] for r in body["value"]) == ["later", "soon"]

        (fired,) = wait_for(lambda: _fired(client, "clock"), "the reminder set over HTTP")
        assert fired["payload"]["reminder_id"] == "soon"
        wait_for(lambda: len(client.get(url).json()["value"]) == 1, "the one-shot reminder gone")
        assert client.delete(f"{url}/later").status_code == 204
        missing = client.delete(f"{url}/later")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert client.get(url).json()["value"] == []
        assert client.put(f"{url}/x", json={"type": "wake"}).status_code == 400  # no time
        assert client.get("/api/agents/nobody/reminders").status_code == 404
        kinds = [
            r["kind"]
            for r in client.get("/api/agents/clock/history", params={"limit": "100"}).json()[
                "value"
            ]
        ]
        assert kinds.count("reminder_scheduled") == 3
        assert kinds.count("reminder_cancelled") == 1
        wait_for_quiet(host_env, "clock")
