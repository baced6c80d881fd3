"""``DurableEntityClient``: the ``EntityClient`` port on the durable SDK's
``DurableOrchestrationClient`` (the ``durable_client_input`` binding)."""

from __future__ import annotations

import logging
from typing import Any

from aos.agents.entity import ENTITY_NAME
from aos.errors import StorageError
from aos.ports.entity_client import EntityClient

__all__ = ["DurableEntityClient"]

logger = logging.getLogger("aos.durable")


def durable_error(exc: Exception, what: str) -> StorageError:
    """The AOS error for a failed durable client call: the SDK raises a bare ``Exception`` with the
    webhook's URL and answer in its message, which is logged, never shown to callers."""
    logger.warning("%s failed: %s", what, exc)
    return StorageError(f"{what} failed: the durable client failed ({type(exc).__name__})")


class DurableEntityClient(EntityClient):
    def __init__(self, client: Any) -> None:
        self._client = client

    async def signal(self, *, agent_id: str, operation: str, value: Any = None) -> None:
        import azure.durable_functions as df

        try:
            await self._client.signal_entity(df.EntityId(ENTITY_NAME, agent_id), operation, value)
        except Exception as exc:  # the SDK raises bare Exception for unexpected statuses
            raise durable_error(exc, f"Signalling agent {agent_id!r}") from exc

    async def read(self, *, agent_id: str) -> dict[str, Any] | None:
        import azure.durable_functions as df

        try:
            response = await self._client.read_entity_state(df.EntityId(ENTITY_NAME, agent_id))
        except Exception as exc:
            raise durable_error(exc, f"Reading agent {agent_id!r}") from exc
        if not response.entity_exists:
            return None
        state = response.entity_state
        return state if isinstance(state, dict) else None
