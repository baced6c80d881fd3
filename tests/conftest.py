"""Shared fixtures: one real Azurite per test session, and per-test storage names.

Tests use real Azure Storage semantics (never a mocked SDK). Azurite starts once per session on free
loopback ports, so suites and parallel runs don't collide; each test gets its own queue and table
names so tests stay independent without restarting the emulator. A missing Azurite fails loudly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost.azurite import Azurite
from devhost.storage_names import UniqueName


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One in-memory Azurite per session, on free ports; use `.connection_string`."""
    with Azurite() as emulator:
        yield emulator


@pytest.fixture
def unique_name() -> UniqueName:
    """Per-test storage names from uuid4 (lowercase hex: valid for queues and tables)."""
    return UniqueName()


@pytest.fixture
def host_env(azurite: Azurite, unique_name: UniqueName) -> dict[str, str]:
    """App settings isolating one devhost process: its own task hub, queues and tables."""
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "AOS_TASK_HUB": unique_name.table_name("Hub"),
        "AOS_EVENTS_QUEUE": unique_name.queue_name("events"),
        "AOS_DEADLETTER_QUEUE": unique_name.queue_name("dead"),
        "AOS_AGENTS_TABLE": unique_name.table_name("Agents"),
        "AOS_HISTORY_TABLE": unique_name.table_name("History"),
        "AOS_DEADLETTER_TABLE": unique_name.table_name("Letters"),
        "DEVHOST_TEST_QUEUE": unique_name.queue_name("sample"),
        "PYTHONUNBUFFERED": "1",
    }
