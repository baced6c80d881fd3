"""Where an agent's context lives between operations: the ``ContextServer`` port.

In Azure the Durable entity *is* the store (the host loads and saves its state around each batch),
so the entity never calls a context server. Agents used directly from Python (scripts, notebooks,
tests, the seed's ``await agent.initialize()`` style) save and load through this port instead;
``InMemoryContextServer`` is the default.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any

__all__ = ["ContextServer", "InMemoryContextServer"]


class ContextServer(ABC):
    """Loads and saves agent contexts (the entity-state JSON) by agent id."""

    @abstractmethod
    async def load(self, *, agent_id: str) -> dict[str, Any] | None:
        """The stored context, or ``None`` for an agent never saved."""

    @abstractmethod
    async def save(self, *, agent_id: str, context: dict[str, Any]) -> None: ...

    @abstractmethod
    async def delete(self, *, agent_id: str) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the agent calls it from ``cleanup``."""


class InMemoryContextServer(ContextServer):
    """A dict of deep copies: what is saved cannot be changed afterwards through the agent."""

    def __init__(self) -> None:
        self._contexts: dict[str, dict[str, Any]] = {}

    async def load(self, *, agent_id: str) -> dict[str, Any] | None:
        stored = self._contexts.get(agent_id)
        return copy.deepcopy(stored) if stored is not None else None

    async def save(self, *, agent_id: str, context: dict[str, Any]) -> None:
        self._contexts[agent_id] = copy.deepcopy(context)

    async def delete(self, *, agent_id: str) -> None:
        self._contexts.pop(agent_id, None)
