"""``DurableEntityClient``: the ``EntityClient`` port on the durable SDK's
``DurableOrchestrationClient`` (the ``durable_client_input`` binding)."""

from __future__ import annotations

from typing import Any

from aos.agents.entity import ENTITY_NAME
from aos.errors import StorageError
from aos.ports.entities import EntityClient

__all__ = ["DurableEntityClient"]


class DurableEntityClient(EntityClient):
    def __init__(self, client: Any) -> None:
        self._client = client

    async def signal(self, *, agent_id: str, operation: str, value: Any = None) -> None:
        import azure.durable_functions as df

        try:
            await self._client.signal_entity(df.EntityId(ENTITY_NAME, agent_id), operation, value)
        except Exception as exc:  # the SDK raises bare Exception for unexpected statuses
            raise StorageError(f"Could not signal agent {agent_id!r}: {exc}") from exc

    async def read(self, *, agent_id: str) -> dict[str, Any] | None:
        import azure.durable_functions as df

        try:
            response = await self._client.read_entity_state(df.EntityId(ENTITY_NAME, agent_id))
        except Exception as exc:
            raise StorageError(f"Could not read agent {agent_id!r}: {exc}") from exc
        if not response.entity_exists:
            return None
        state = response.entity_state
        return state if isinstance(state, dict) else None
