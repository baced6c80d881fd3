"""Where an agent's context lives: ``ContextMCPServer``, the one seam for loading, saving and
archiving it.

An agent's context has two parts (see ``aos.domain.history``):

* its **state** -- the bounded ``AgentContext`` document. In Azure it is the Durable entity's state,
  loaded and saved by the host around every batch; used directly from Python (scripts, notebooks,
  tests, the seed's ``await agent.initialize()``) it lives in a ``ContextServer``;
* its **history** -- every handled event and decision, appended to a ``HistoryArchive`` (an Azure
  Table in the app) so that the state can stay small.

``ContextMCPServer`` puts both behind one object: the HTTP API and the MCP endpoint read through
it, and ``PerpetualAgent.initialize`` creates one (in memory) when none is given, as the seed
describes; ``save_state`` saves and archives through it. (The entity's batch, which runs on a
worker thread, writes the same archive through its synchronous half, ``HistoryWriter``.) Its name is the seed's: the same object is what the MCP
endpoint (``aos.api.mcp``) serves to language-model clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aos.errors import HostManagedStateError

if TYPE_CHECKING:
    from aos.ports.entities import EntityClient
from aos.domain.contexts import ContextServer

__all__ = ["EntityContextServer"]


class EntityContextServer(ContextServer):
    """The contexts of the app's agents: the ``agent`` entities' state, read through the durable
    client. Writes go through entity operations (the host saves the state), so ``save`` and
    ``delete`` refuse."""

    def __init__(self, entities: EntityClient) -> None:
        self.entities = entities

    async def load(self, *, agent_id: str) -> dict[str, Any] | None:
        return await self.entities.read(agent_id=agent_id)

    async def save(self, *, agent_id: str, context: dict[str, Any]) -> None:
        raise HostManagedStateError(
            "The Durable host saves an agent's state; change it through the entity's operations"
        )

    async def delete(self, *, agent_id: str) -> None:
        raise HostManagedStateError("Deregister the agent to delete its entity")
