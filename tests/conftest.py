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
