"""Kill the host process mid-stream: every acknowledged entity signal is applied exactly once.

Uses the devhost test app (tests/devhost/devhost_sample_app.py) so it checks the host itself,
independent of the AOS app: a 202 from the signal endpoint means the signal is stored, so after a
SIGKILL and a restart each acknowledged signal must appear once in the entity state, and signals
whose request died with the host at most once.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from process_host import HostProcess

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

TOTAL = 1000
KILL_AFTER = 300


def _post(client: httpx.Client, key: str, amount: int) -> bool:
    try:
        return client.post(f"/api/counters/{key}", json=amount).status_code == 202
    except httpx.TransportError:
        return False


def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    sample_root = Path(__file__).resolve().parent.parent / "devhost"
    args = ["--root", str(sample_root), "--app", "devhost_sample_app"]
    host = HostProcess(host_env, tmp_path / "devhost.log", args)
    host.start(ready_path="/api/items/ready")
    acknowledged: set[int] = set()
    key = host_env["AOS_TASK_HUB"]
    try:
        with httpx.Client(base_url=host.base_url, timeout=5.0) as client:
            with ThreadPoolExecutor(4) as pool:
                first = list(
                    pool.map(lambda a: (a, _post(client, key, a)), range(1, KILL_AFTER + 1))
                )
            acknowledged |= {a for a, ok in first if ok}
            # Kill while a burst is in flight: once part of it has been answered.
            with ThreadPoolExecutor(4) as pool:
                numbers = range(KILL_AFTER + 1, KILL_AFTER + 101)
                burst = [pool.submit(_post, client, key, a) for a in numbers]
                deadline = time.monotonic() + 30
                while sum(f.done() for f in burst) < 20:
                    assert time.monotonic() < deadline, "burst not answered"
                    time.sleep(0.005)
                host.kill()
                in_doubt = {KILL_AFTER + 1 + i for i, f in enumerate(burst) if not f.result()}
                acknowledged |= {KILL_AFTER + 1 + i for i, f in enumerate(burst) if f.result()}
        host.start(ready_path="/api/items/ready")
        with httpx.Client(base_url=host.base_url, timeout=5.0) as client:
            with ThreadPoolExecutor(4) as pool:
                rest = list(
                    pool.map(
                        lambda a: (a, _post(client, key, a)), range(KILL_AFTER + 101, TOTAL + 1)
                    )
                )
            acknowledged |= {a for a, ok in rest if ok}
            assert len(acknowledged) >= TOTAL - len(in_doubt)
            deadline = time.monotonic() + 60
            while True:
                state = client.get(f"/api/counters/{key}").json()
                if set(acknowledged) <= set(state["seen"]):
                    break
                assert time.monotonic() < deadline, "acknowledged signals not applied in 60 s"
                time.sleep(0.1)
    finally:
        host.stop()
    seen = state["seen"]
    assert len(seen) == len(set(seen)), "a signal was applied twice"
    assert set(seen) - acknowledged <= in_doubt
    assert state["ops"] == len(seen)
    print(f"acknowledged={len(acknowledged)} in_doubt={len(in_doubt)} applied={len(seen)}")
