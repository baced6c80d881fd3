"""Shared by the client and command-line end-to-end tests: one AOS host per test module, names
that do not collide within it, and a dead letter made through the real queue path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aos_e2e_support import queue_client
from process_host import HostProcess

from devhost.azurite import Azurite
from devhost.storage_names import UniqueName

MAX_GOALS = 3
"""The test host's AOS_MAX_GOALS, low so that a test can exceed it."""


def module_env(azurite: Azurite) -> dict[str, str]:
    names = UniqueName()
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "AOS_TASK_HUB": names.table_name("Hub"),
        "AOS_EVENTS_QUEUE": names.queue_name("events"),
        "AOS_DEADLETTER_QUEUE": names.queue_name("dead"),
        "AOS_AGENTS_TABLE": names.table_name("Agents"),
        "AOS_HISTORY_TABLE": names.table_name("History"),
        "AOS_DEADLETTER_TABLE": names.table_name("Letters"),
        "AOS_MAX_GOALS": str(MAX_GOALS),
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def module_host(azurite: Azurite, log_dir: Path) -> Iterator[tuple[HostProcess, dict[str, str]]]:
    env = module_env(azurite)
    host = HostProcess(env, log_dir / "devhost.log")
    host.start()
    try:
        yield host, env
    finally:
        host.stop()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def put_undeliverable_message(env: dict[str, str], text: str = "not json") -> None:
    """A message the delivery function dead-letters (not JSON), straight onto the events queue:
    the only way to make one, since the HTTP API validates what it queues."""
    with queue_client(env["AzureWebJobsStorage"], env["AOS_EVENTS_QUEUE"]) as queue:
        queue.send_message(text)
