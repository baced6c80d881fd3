"""The contexts of the app's agents, read through the entity client (``EntityContextServer``).

``ContextStore`` (``aos.domain.contexts``) puts an agent's state and history behind one object; in
the app its state side is this server, which reads the ``agent`` entities' state through the
durable client and refuses writes (the host saves an entity's state after its operations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aos.errors import HostManagedStateError

if TYPE_CHECKING:
    from aos.ports.entity_client import EntityClient
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
