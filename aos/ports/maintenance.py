"""Ports for the housekeeping that runs beside the agents: retention of the history table and
purges of one agent's rows.

Both delete many rows, so both are *resumable*: they work in batches (one table transaction of up
to 100 rows), record where they are after each batch in a table row, and stop when their time
budget is spent; the next run (the timer's, or the purge's next queue message) continues from
that row. A run killed by its host's timeout loses at most the batch it was deleting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

__all__ = ["PurgeJobs", "PurgeStatus", "Retention", "RetentionRun"]


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one retention run did."""

    history_deleted: int
    receipts_deleted: int
    partitions: int
    """Agent partitions visited (entirely or partly)."""
    pass_finished: bool
    """True when the run reached the last partition: the next run starts a new pass."""


class Retention(ABC):
    @abstractmethod
    async def run(
        self, *, older_than: datetime, budget_seconds: float, pass_interval_seconds: float = 0
    ) -> RetentionRun:
        """Delete history records recorded and receipts claimed before ``older_than``, from
        where the previous run stopped, until done or ``budget_seconds`` have passed. A new pass
        over the partitions starts only ``pass_interval_seconds`` after the last one started,
        so frequent runs keep up with a backlog without walking every partition each time."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


@dataclass(frozen=True, slots=True)
class PurgeStatus:
    """A purge of one agent's history and delivery receipts (``DELETE …?purge=true``): rows
    recorded up to ``requested_at`` are deleted, so that an agent registered again under the same
    id while the purge runs keeps its new history."""

    agent_id: str
    requested_at: str
    updated_at: str
    history_deleted: int = 0
    receipts_deleted: int = 0
    finished_at: str | None = None

    @property
    def done(self) -> bool:
        return self.finished_at is not None


class PurgeJobs(ABC):
    @abstractmethod
    async def start(self, *, agent_id: str) -> PurgeStatus:
        """Record a purge of ``agent_id`` (a purge already running continues with a later
        ``requested_at``) and queue the message that runs it."""

    @abstractmethod
    async def status(self, *, agent_id: str) -> PurgeStatus | None: ...

    @abstractmethod
    async def run(self, *, agent_id: str, budget_seconds: float) -> PurgeStatus | None:
        """Delete the next rows of the purge until done or out of time; ``None`` if there is no
        purge of ``agent_id`` or another run took it over. Call again (the next queue message)
        while not ``done``."""

    @abstractmethod
    async def resume(self, *, agent_id: str) -> None:
        """Queue the message that continues an unfinished purge."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
