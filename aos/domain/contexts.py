"""Where an agent's context lives: ``ContextStore`` (the seed's ``ContextMCPServer``), the one
seam for loading, saving and archiving it.

An agent's context has two parts (see ``aos.domain.history``):

* its **state** -- the bounded ``AgentContext`` document. In Azure it is the Durable entity's state,
  loaded and saved by the host around every batch; used directly from Python (scripts, notebooks,
  tests, the seed's ``await agent.initialize()``) it lives in a ``ContextServer``;
* its **history** -- every handled event and decision, appended to a ``HistoryArchive`` (an Azure
  Table in the app) so that the state can stay small.

``ContextStore`` puts both behind one object: the HTTP API and the MCP endpoint read through it,
and ``PerpetualAgent.initialize`` creates one (in memory) when none is given, as the seed
describes; ``save_state`` saves and archives through it. (The entity function archives its
batches into the same archive when they end.) It is not itself an MCP server: the seed calls it
``ContextMCPServer`` because the same contexts are what the MCP endpoint (``aos.api.mcp``)
serves, and that name is kept as an alias.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from aos.domain.history import (
    HistoryArchive,
    HistoryPage,
    HistoryQuery,
    HistoryRecord,
    InMemoryHistoryArchive,
)

__all__ = [
    "ContextMCPServer",
    "ContextServer",
    "ContextStore",
    "InMemoryContextServer",
]


class ContextServer(ABC):
    """Loads and saves agent contexts (the entity-state JSON) by agent id."""

    @abstractmethod
    async def load(self, *, agent_id: str) -> dict[str, Any] | None:
        """The stored context, or ``None`` for an agent never saved."""

    @abstractmethod
    async def save(self, *, agent_id: str, context: dict[str, Any]) -> None: ...

    @abstractmethod
    async def delete(self, *, agent_id: str) -> None: ...

    async def load_state(self, *, agent_id: str) -> dict[str, Any] | None:
        """The seed's name for ``load``: what ``PerpetualAgent`` calls."""
        return await self.load(agent_id=agent_id)

    async def save_state(self, *, agent_id: str, context: dict[str, Any]) -> bool:
        """The seed's name for ``save``: what ``PerpetualAgent`` calls; ``True`` once saved."""
        await self.save(agent_id=agent_id, context=context)
        return True

    async def archive(self, *, records: Sequence[HistoryRecord]) -> None:  # noqa: B027
        """Append history records. A server without an archive keeps only the state."""

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


class ContextStore(ContextServer):
    """An agent's state and history behind one object: ``states`` holds the state, ``archive``
    the history (each in memory unless given)."""

    def __init__(
        self, *, states: ContextServer | None = None, archive: HistoryArchive | None = None
    ) -> None:
        self.states = states if states is not None else InMemoryContextServer()
        self.history_archive = archive if archive is not None else InMemoryHistoryArchive()

    # ------------------------------------------------------------------------------ state
    async def load(self, *, agent_id: str) -> dict[str, Any] | None:
        return await self.states.load(agent_id=agent_id)

    async def save(self, *, agent_id: str, context: dict[str, Any]) -> None:
        await self.states.save(agent_id=agent_id, context=context)

    async def delete(self, *, agent_id: str) -> None:
        """Delete the state; the history stays until ``purge_history`` or retention."""
        await self.states.delete(agent_id=agent_id)

    # ------------------------------------------------------------------------------ history
    async def archive(self, *, records: Sequence[HistoryRecord]) -> None:
        if records:
            await self.history_archive.append(records=records)

    async def history(self, *, agent_id: str, query: HistoryQuery | None = None) -> HistoryPage:
        """Archived records, newest first (see ``HistoryQuery``)."""
        return await self.history_archive.page(agent_id=agent_id, query=query or HistoryQuery())

    async def has_history(self, *, agent_id: str) -> bool:
        return await self.history_archive.has_history(agent_id=agent_id)

    async def purge_history(self, *, agent_id: str) -> int:
        return await self.history_archive.purge_agent(agent_id=agent_id)

    async def close(self) -> None:
        await self.states.close()
        await self.history_archive.close()


ContextMCPServer = ContextStore
"""The seed's name for ``ContextStore``."""
