"""Helpers for the end-to-end tests of the AOS app: the host process, polling and storage reads.

The AOS app (`function_app.py`) runs under `python -m devhost --no-azurite` as a real process
(`process_host.HostProcess`); tests talk to it over HTTP only, and read Azure Storage directly only
where the queue path is the thing under test (dead letters, quiescence).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import httpx
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient
from process_host import HostProcess

from devhost import entities_table_name
from devhost.entity_store import ENTITIES_PARTITION, SIGNAL_PREFIX, EntityId

T = TypeVar("T")

PROBLEM_JSON = "application/problem+json"
# Bounded waits: generous enough for a loaded 2-core machine, never part of an assertion on speed.
SETTLE_SECONDS = 60.0


@contextmanager
def aos_host(env: dict[str, str], log_path: Path) -> Iterator[HostProcess]:
    """The AOS app under `python -m devhost` on a free port; stopped (SIGTERM) on exit."""
    host = HostProcess(env, log_path)
    host.start()
    try:
        yield host
    finally:
        host.stop()


def wait_for(check: Callable[[], T | None], what: str, limit: float = SETTLE_SECONDS) -> T:
    """Poll `check` every 50 ms until it returns something truthy; fail after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit:.0f}s waiting for {what}")
        time.sleep(0.05)


def context_of(client: httpx.Client, agent_id: str) -> dict[str, Any]:
    response = client.get(f"/api/agents/{agent_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def counters_of(client: httpx.Client, agent_id: str) -> dict[str, int]:
    counters: dict[str, int] = context_of(client, agent_id)["counters"]
    return counters


def wait_for_events(client: httpx.Client, agent_id: str, handled: int) -> dict[str, Any]:
    """The agent's context once `counters.events_handled` has reached `handled`."""

    def reached() -> dict[str, Any] | None:
        context = context_of(client, agent_id)
        return context if context["counters"]["events_handled"] >= handled else None

    return wait_for(reached, f"{agent_id} to handle {handled} events")


def queue_client(connection_string: str, name: str) -> QueueClient:
    """A sync queue client that fails fast instead of retrying for ~80 s (see docs/SDK_NOTES.md)."""
    client = QueueClient.from_connection_string(
        connection_string, name, retry_total=2, retry_backoff_factor=0.2
    )
    with suppress(ResourceExistsError):
        client.create_queue()
    return client


def peek_json(connection_string: str, queue: str) -> list[dict[str, Any]]:
    """Up to 32 messages on `queue`, parsed as JSON, without taking them off the queue."""
    with queue_client(connection_string, queue) as client:
        return [json.loads(m.content) for m in client.peek_messages(max_messages=32)]


def queue_length(connection_string: str, queue: str) -> int:
    """Messages on the queue, visible or leased (Azurite counts both)."""
    with queue_client(connection_string, queue) as client:
        count: int | None = client.get_queue_properties().approximate_message_count
        return count or 0


def pending_signals(connection_string: str, hub: str, agent_id: str) -> int:
    """Entity signals the local host has accepted for the agent but not yet applied.

    The local host stores each accepted signal as a `sig|<entity>|<sequence>` row of
    `DevHost<hub>Entities` and deletes it in the transaction that stores the state that applied it
    (docs/LOCAL_HOST.md), so no such rows means every accepted signal has been applied.
    """
    table = entities_table_name(hub)
    prefix = f"{SIGNAL_PREFIX}{EntityId.of('agent', agent_id).partition_key}|"
    with TableClient.from_connection_string(connection_string, table) as client:
        rows = client.query_entities(
            "PartitionKey eq @partition and RowKey ge @first and RowKey lt @after",
            parameters={
                "partition": ENTITIES_PARTITION,
                "first": prefix,
                "after": prefix[:-1] + "}",  # `}` follows `|`
            },
            select=["RowKey"],
        )
        return sum(1 for _ in rows)


def wait_for_quiet(env: dict[str, str], agent_id: str) -> None:
    """Wait until the events queue is empty (leased messages included) and the agent has no
    accepted-but-unapplied signal: nothing queued can still change its state."""
    storage = env["AzureWebJobsStorage"]
    wait_for(
        lambda: (
            queue_length(storage, env["AOS_EVENTS_QUEUE"]) == 0
            and pending_signals(storage, env["AOS_TASK_HUB"], agent_id) == 0
        ),
        "the events queue and the agent's signals to drain",
    )
