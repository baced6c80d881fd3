"""End-to-end fixtures: the session Azurite plus per-test app settings for a devhost process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from process_host import HostProcess

from devhost.azurite import Azurite
from devhost.storage_names import UniqueName


@pytest.fixture
def host_env(azurite: Azurite, unique_name: UniqueName) -> dict[str, str]:
    """App settings isolating this test: its own task hub, queues and tables."""
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "AOS_TASK_HUB": unique_name.table_name("Hub"),
        "AOS_EVENTS_QUEUE": unique_name.queue_name("events"),
        "AOS_DEADLETTER_QUEUE": unique_name.queue_name("dead"),
        "AOS_AGENTS_TABLE": unique_name.table_name("Agents"),
        "AOS_HISTORY_TABLE": unique_name.table_name("History"),
        "DEVHOST_TEST_QUEUE": unique_name.queue_name("sample"),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def app_host(host_env: dict[str, str], tmp_path: Path) -> Iterator[HostProcess]:
    """`python -m devhost` serving function_app.py, started and stopped around the test."""
    host = HostProcess(host_env, tmp_path / "devhost.log")
    host.start()
    yield host
    host.stop()
