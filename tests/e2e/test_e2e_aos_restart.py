"""SIGKILL the AOS host while 1,000 events stream in, restart it, and count what the agent applied.

One agent; 1,000 events with distinct `event_id`s are POSTed to `/api/agents/{id}/events` by a few
concurrent clients. Once part of them has been acknowledged, the host process is killed (SIGKILL,
no clean shutdown) with requests in flight. It is restarted on the same port with the same settings,
and every event whose POST was not acknowledged with 202 is sent again, as an at-least-once client
would. Some of those were queued before the kill, and queue messages the dead host had leased come
back when their lease ends (3 s here): each is a redelivery of an event that may already be applied.

With the default settings every event must be applied exactly once. Before the delivery receipts
(commit 9483a52) this failed in about half the runs: the agent recognises a repeated `event_id`
only within its window of the last `AOS_PROCESSED_IDS` (256) ids, and the leased messages came
back after ~600 resent events had been applied, so those already applied before the kill were
applied again (1,001-1,011 events counted).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from aos_e2e_support import counters_of, wait_for, wait_for_quiet
from process_host import HostProcess

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

TOTAL = 1000
KILL_AFTER = 400  # acknowledged events before the kill
CLIENTS = 4
AGENT = "steady"


def post_event(client: httpx.Client, i: int) -> bool:
    """True when the host acknowledged the event with 202 (it is safely queued)."""
    body = {"event_id": f"evt-{i:04d}", "type": "tick", "data": {"i": i}}
    try:
        return client.post(f"/api/agents/{AGENT}/events", json=body).status_code == 202
    except httpx.TransportError:
        return False


def kill_restart_and_resend(env: dict[str, str], log: Path) -> dict[str, int]:
    """Stream, SIGKILL mid-stream, restart, resend the unacknowledged; counters once drained."""
    host = HostProcess(env, log)
    host.start()
    try:
        with httpx.Client(base_url=host.base_url, timeout=10.0) as client:
            registered = client.post("/api/agents", json={"agent_id": AGENT, "purpose": "Count"})
            assert registered.status_code == 201, registered.text
            acknowledged = 0
            lock = threading.Lock()

            def send(i: int) -> bool:
                nonlocal acknowledged
                ok = post_event(client, i)
                with lock:
                    acknowledged += ok
                return ok

            with ThreadPoolExecutor(CLIENTS) as pool:
                futures: list[Future[bool]] = [pool.submit(send, i) for i in range(TOTAL)]
                wait_for(lambda: acknowledged >= KILL_AFTER, "the first acknowledgements")
                host.kill()  # requests in flight die with it; the rest find no host
                results = [f.result() for f in futures]
        unacknowledged = [i for i, ok in enumerate(results) if not ok]
        assert KILL_AFTER <= TOTAL - len(unacknowledged) < TOTAL

        host.start()
        with httpx.Client(base_url=host.base_url, timeout=10.0) as client:
            with ThreadPoolExecutor(CLIENTS) as pool:
                resent = list(pool.map(lambda i: post_event(client, i), unacknowledged))
            assert all(resent), "the restarted host refused a resent event"
            wait_for(lambda: counters_of(client, AGENT)["events_handled"] >= TOTAL, "1,000 events")
            # Quiescent: no message left on the queue (Azurite counts leased ones too, so the dead
            # host's messages have come back and been handled) and no accepted signal waiting to be
            # applied. Nothing can change the count any more: it is final.
            wait_for_quiet(env, AGENT)
            counters = counters_of(client, AGENT)
    finally:
        host.stop()
    numbers = {
        "acknowledged_before_kill": TOTAL - len(unacknowledged),
        "resent": len(unacknowledged),
        "events_handled": counters["events_handled"],
        "duplicates_ignored": counters["duplicates_ignored"],
    }
    print(" ".join(f"{k}={v}" for k, v in numbers.items()))
    return numbers


def test_sigkill_mid_stream_applies_every_event_once(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    numbers = kill_restart_and_resend(host_env, tmp_path / "host.log")
    assert numbers["events_handled"] == TOTAL, "an event was lost or applied twice"
