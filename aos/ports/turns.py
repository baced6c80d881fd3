"""Port: starting turn orchestrations and waking the ones that wait (``aos.domain.turns``). The
Durable client adapter is ``aos.adapters.azure.durable``; the in-memory one
(``aos.adapters.memory``) keeps the turns for ``AgentManager`` to run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["TurnScheduler"]


class TurnScheduler(ABC):
    @abstractmethod
    async def start(self, *, instance_id: str, start: dict[str, Any]) -> None:
        """Start the turn orchestration ``instance_id`` with input ``start`` (a ``TurnStart``)
        unless an instance of that id exists already: starting twice is harmless."""

    @abstractmethod
    async def status(self, *, instance_id: str) -> dict[str, Any] | None:
        """The turn orchestration's status (``runtime_status``: ``Pending``, ``Running``,
        ``Completed``, ``Failed``, ``Terminated``; ``custom_status``; ``input``; ``output``;
        ``created_time``; ``last_updated_time``), or ``None`` if there is no such instance."""

    @abstractmethod
    async def approve(self, *, instance_id: str, answer: dict[str, Any]) -> None:
        """Hand a waiting tool call its approval answer (the ``approval`` event)."""

    @abstractmethod
    async def wake(self, *, instance_id: str) -> None:
        """Tell a waiting turn that it may run now (the ``wake`` event). Raises if the instance
        does not exist yet, so the message is delivered again once it does."""
