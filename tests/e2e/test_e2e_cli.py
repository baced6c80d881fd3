"""The `aos` command line as a subprocess (the console script `make setup` installs) against the
AOS app under `python -m devhost`: every command, paging, errors with their exit codes and
messages, and `history --follow` picking up a new event.

One host serves the module; each test uses its own agent ids. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from aos_e2e_support import SETTLE_SECONDS, wait_for
from client_support import (
    MAX_GOALS,
    module_host,
    new_id,
    put_undeliverable_message,
)
from process_host import HostProcess

from aos.client import AosClient
from devhost.azurite import Azurite, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

AOS = Path(sys.executable).with_name("aos")
PURPOSE = "Resolve customer tickets quickly"


@pytest.fixture(scope="module")
def served(
    azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HostProcess, dict[str, str]]]:
    with module_host(azurite, tmp_path_factory.mktemp("cli")) as found:
        yield found


@pytest.fixture
def host(served: tuple[HostProcess, dict[str, str]]) -> HostProcess:
    return served[0]


def cli_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AOS_FUNCTION_KEY", "AOS_URL")}
    return {**env, "AOS_URL": url, "COLUMNS": "200"}


def aos(host: HostProcess | str, *args: str) -> subprocess.CompletedProcess[str]:
    """`aos ARGS` with AOS_URL pointing at the host; stdout is a pipe, so output is JSON."""
    url = host if isinstance(host, str) else host.base_url
    return subprocess.run(
        [str(AOS), *args],
        env=cli_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(host: HostProcess, *args: str) -> Any:
    done = aos(host, *args)
    assert done.returncode == 0, f"aos {' '.join(args)}: {done.returncode}\n{done.stderr}"
    return json.loads(done.stdout) if done.stdout.strip() else None


def fails(host: HostProcess | str, code: int, *args: str) -> str:
    done = aos(host, *args)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    return done.stderr


def test_the_console_script_is_installed() -> None:
    assert AOS.is_file(), f"{AOS} is missing: `make setup` installs the project (pip install -e .)"


def test_agents_commands(host: HostProcess, tmp_path: Path) -> None:
    support = new_id("support")
    created = ok(
        host, "agents", "register", support, "--purpose", PURPOSE, "--scope", "Tickets",
        "--criterion", "Fast answers", "--subscribe", "ticket.opened", "--subscribe", "ticket.closed",
    )  # fmt: skip
    assert (created["agent_id"], created["status"]) == (support, "active")
    assert created["subscriptions"] == ["ticket.opened", "ticket.closed"]

    stderr = fails(host, 5, "agents", "register", support, "--purpose", PURPOSE)
    assert "already registered" in stderr

    spec = tmp_path / "billing.yaml"
    billing = new_id("billing")
    spec.write_text(f"agent_id: {billing}\nkind: leadership\npurpose: Bill correctly\n")
    assert ok(host, "agents", "register", "--file", str(spec))["kind"] == "leadership"
    as_json = tmp_path / "billing.json"
    as_json.write_text(json.dumps({"agent_id": billing, "purpose": "Bill on time"}))
    replaced = ok(
        host, "agents", "register", "--file", str(as_json), "--replace", "--kind", "generic"
    )
    assert (replaced["purpose"], replaced["kind"]) == ("Bill on time", "generic")

    listed = ok(host, "agents", "list", "--page-size", "1")  # one request per agent
    ids = [a["agent_id"] for a in listed]
    assert {support, billing} <= set(ids)
    assert len(ids) == len(set(ids))

    updated = ok(
        host, "agents", "update", support, "--purpose", "Resolve tickets politely",
        "--requires-approval", "send", "--requires-approval", "publish",
    )  # fmt: skip
    assert updated["purpose"] == "Resolve tickets politely"
    assert updated["requires_approval"] == ["send", "publish"]
    assert updated["subscriptions"] == ["ticket.opened", "ticket.closed"]  # left as they were
    shown = ok(host, "agents", "show", support)
    assert shown["purpose"] == "Resolve tickets politely"

    table = aos(host, "-o", "table", "agents", "list")
    assert table.returncode == 0
    assert "Agents" in table.stdout
    assert support in table.stdout

    assert ok(host, "agents", "delete", billing, "--purge") == {
        "agent_id": billing,
        "status": "deleted",
    }
    stderr = fails(host, 4, "agents", "show", billing)
    assert f"aos: error: Agent '{billing}' is not registered" in stderr
    purge = ok(host, "agents", "purge-status", billing)
    assert purge["agent_id"] == billing
    assert purge["status"] in ("purging", "done")


def test_goals_commands(host: HostProcess) -> None:
    ops = new_id("ops")
    ok(host, "agents", "register", ops, "--purpose", "Keep the services running")
    goal = ok(host, "goals", "add", ops, "99.9% uptime", "--id", "uptime")
    assert (goal["id"], goal["status"]) == ("uptime", "pending")
    changed = ok(
        host, "goals", "update", ops, "uptime", "--status", "in_progress", "--progress", "0.5"
    )
    assert (changed["status"], changed["progress"]) == ("in_progress", 0.5)
    for n in range(MAX_GOALS - 1):
        ok(host, "goals", "add", ops, f"goal {n}")
    assert next(g["id"] for g in ok(host, "goals", "list", ops)) == "uptime"
    stderr = fails(host, 6, "goals", "add", ops, "one goal too many")
    assert "aos: error:" in stderr
    assert ok(host, "goals", "remove", ops, "uptime")["status"] == "removed"
    fails(host, 4, "goals", "remove", ops, "uptime")
    assert len(ok(host, "goals", "list", ops)) == MAX_GOALS - 1


def test_events_history_alignment_health(host: HostProcess) -> None:
    cfo = new_id("cfo")
    ok(
        host,
        "agents",
        "register",
        cfo,
        "--purpose",
        "Keep cash flowing",
        "--subscribe",
        "market.update",
    )
    sent = ok(
        host, "events", "send", cfo, "invoice.paid", "--data", '{"amount": 1200}', "--id", "inv-1",
        "--correlation-id", "demo-1",
    )  # fmt: skip
    assert (sent["event_id"], sent["status"], sent["correlation_id"]) == (
        "inv-1",
        "queued",
        "demo-1",
    )
    published = ok(host, "events", "publish", "market.update", "--data", '{"index": "up"}')
    assert published["subscribers"] >= 1

    def both_recorded() -> list[Any] | None:
        records = ok(host, "history", cfo)
        return records if len(records) >= 2 else None

    records = wait_for(both_recorded, "both events in the history")
    assert {r["type"] for r in records} == {"invoice.paid", "market.update"}
    only = ok(
        host, "history", cfo, "--type", "invoice.paid", "--kind", "event", "--limit", "1",
        "--since", "2020-01-01T00:00:00Z",
    )  # fmt: skip
    assert ok(host, "history", cfo, "--until", "2020-01-01T00:00:00Z") == []
    assert "until" in fails(
        host, 3, "history", cfo, "--since", "2030-01-02", "--until", "2030-01-01"
    )
    assert [r["event_id"] for r in only] == ["inv-1"]

    scored = ok(host, "alignment", cfo, "improve cash flow")
    assert 0.0 < scored["score"] <= 1.0
    assert ok(host, "health")["status"] == "ok"


def test_errors_and_exit_codes(host: HostProcess) -> None:
    stderr = fails(host, 3, "agents", "show", "not an id!")
    assert "path/agent_id: invalid id" in stderr
    stderr = fails(host, 3, "agents", "register", "x", "--purpose", "")  # refused before sending
    assert "body/purpose" in stderr
    assert "--data" in fails(host, 2, "events", "send", "cfo", "t", "--data", "{not json")
    assert "No such command" in fails(host, 2, "agents", "frobnicate")
    stderr = fails(f"http://127.0.0.1:{free_port()}", 7, "health")
    assert "could not reach AOS" in stderr


def read_lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def test_ask_and_turns_commands(host: HostProcess) -> None:
    agent_id = new_id("thinker")
    ok(host, "agents", "register", agent_id, "--purpose", PURPOSE, "--kind", "generic")
    turn = ok(host, "agents", "ask", agent_id, 'update_state key=mood value="calm"')
    assert turn["status"] == "completed", turn
    assert (turn["offline"], turn["model"]) == (True, "aos-offline")
    assert turn["tool_calls"][0]["name"] == "update_state"
    assert ok(host, "agents", "show", agent_id)["state"]["mood"] == "calm"
    assert ok(host, "turns", "show", agent_id, turn["turn_id"])["reply"] == turn["reply"]
    table = aos(host, "-o", "table", "turns", "show", agent_id, turn["turn_id"])
    assert table.returncode == 0, table.stderr
    assert "update_state" in table.stdout
    shown = aos(host, "-o", "table", "agents", "show", agent_id)
    assert shown.returncode == 0, shown.stderr
    assert "turns_completed" in shown.stdout

    # in a terminal (table) the answer is the reply alone
    said = aos(host, "-o", "table", "agents", "ask", agent_id, "How are tickets going?")
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip()
    assert "turn_id" not in said.stdout

    # --no-wait queues it; the same --message-id is the same turn
    message_id = new_id("msg")
    asked = ("agents", "ask", agent_id, "options: reply now, reply later", "--no-wait")
    queued = ok(host, *asked, "--message-id", message_id)
    assert queued["status"] == "queued"
    assert queued["message_id"] == message_id
    assert ok(host, *asked, "--message-id", message_id)["turn_id"] == queued["turn_id"]

    def decided() -> Any:
        shown = aos(host, "turns", "show", agent_id, queued["turn_id"])  # 404 until it arrives
        found = json.loads(shown.stdout) if shown.returncode == 0 else None
        return found if found and found["status"] == "completed" else None

    assert wait_for(decided, "the queued turn")["tool_calls"][0]["name"] == "decide"

    # approving a turn that waits for nothing is a conflict; unknown agents and turns not found
    assert "approval" in fails(host, 5, "turns", "approve", agent_id, turn["turn_id"])
    fails(host, 5, "turns", "approve", agent_id, turn["turn_id"], "--refuse", "--reason", "no")
    fails(host, 4, "agents", "ask", new_id("nobody"), "Hello")
    fails(host, 4, "turns", "show", agent_id, "turn-" + "f" * 32)
    fails(host, 3, "agents", "ask", agent_id, "")


def test_reminders_commands(host: HostProcess) -> None:
    agent_id = new_id("rem")
    ok(host, "agents", "register", agent_id, "--purpose", PURPOSE)
    reminder = ok(
        host, "reminders", "set", agent_id, "weekly", "--type", "review.due",
        "--data", '{"team": "support"}', "--after", "3600", "--every", "604800",
    )  # fmt: skip
    assert (reminder["reminder_id"], reminder["every_seconds"]) == ("weekly", 604800)
    assert reminder["data"] == {"team": "support"}
    listed = ok(host, "reminders", "list", agent_id)
    assert [r["reminder_id"] for r in listed] == ["weekly"]
    assert ok(host, "reminders", "cancel", agent_id, "weekly")["status"] == "cancelled"
    assert ok(host, "reminders", "list", agent_id) == []
    fails(host, 4, "reminders", "cancel", agent_id, "weekly")
    fails(host, 3, "reminders", "set", agent_id, "bad", "--type", "review.due")  # no time


def test_history_follow_prints_new_events(host: HostProcess) -> None:
    cfo = new_id("cfo")
    with AosClient(host.base_url) as client:
        client.register_agent({"agent_id": cfo, "purpose": "Keep cash flowing"})
        client.send_event(cfo, {"event_id": "before", "type": "invoice.paid"})
        wait_for(lambda: client.latest_sequence(cfo) > 0, "the first event in the history")
        with subprocess.Popen(
            [str(AOS), "history", cfo, "--follow", "--interval", "0.2"],
            env=cli_env(host.base_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as follower:
            lines: queue.Queue[str] = queue.Queue()
            assert follower.stdout is not None
            reader = threading.Thread(target=read_lines, args=(follower.stdout, lines), daemon=True)
            reader.start()
            try:
                backlog = json.loads(lines.get(timeout=SETTLE_SECONDS))  # it is running
                assert backlog["event_id"] == "before"
                client.send_event(
                    cfo, {"event_id": "after", "type": "invoice.paid", "data": {"n": 2}}
                )
                arrived = json.loads(lines.get(timeout=SETTLE_SECONDS))
                assert (arrived["event_id"], arrived["payload"]["data"]) == ("after", {"n": 2})
            finally:
                follower.send_signal(signal.SIGINT)
                code = follower.wait(timeout=30)
                reader.join(timeout=30)
    assert code == 130  # interrupted, as Ctrl-C


def test_deadletters_list_and_replay(served: tuple[HostProcess, dict[str, str]]) -> None:
    host, env = served
    put_undeliverable_message(env, "cli test: not json")

    def listed() -> dict[str, Any] | None:
        letters = ok(host, "deadletters", "list")
        return next((d for d in letters if "cli test" in str(d.get("original"))), None)

    letter = wait_for(listed, "the message in `aos deadletters list`")
    replayed = ok(host, "deadletters", "replay", letter["id"])
    assert (replayed["id"], replayed["status"]) == (letter["id"], "replayed")
    assert isinstance(ok(host, "deadletters", "list", "--poison"), list)
    fails(host, 4, "deadletters", "replay", "no-such-letter", "--poison")
