"""Port: starting and stopping the orchestrations that wait for reminders
(``aos.domain.reminders``). The Durable client adapter is ``aos.adapters.azure.durable``; the
in-memory one (``aos.adapters.memory``) only records what it was asked."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["ReminderScheduler"]


class ReminderScheduler(ABC):
    @abstractmethod
    async def start(self, *, instance_id: str, fire: dict[str, Any]) -> None:
        """Start the orchestration ``instance_id`` with input ``fire`` unless an instance of that
        id exists already (running, continued or finished): starting twice is harmless."""

    @abstractmethod
    async def stop(self, *, instance_id: str) -> None:
        """Ask the orchestration to end without firing; nothing if it is not running."""
