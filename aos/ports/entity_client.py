"""Port: agent entities as seen from outside (``EntityClient``): signal an operation, read the
state, and wait until the state shows a change.

The Python durable SDK cannot call an entity and wait for its result from a client, so writes are
signals and readers poll the state. ``aos.adapters.azure.durable`` adapts the durable client;
``aos.adapters.memory.InMemoryEntities`` runs the real operations in process."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

__all__ = ["EntityClient"]


class EntityClient(ABC):
    @abstractmethod
    async def signal(self, *, agent_id: str, operation: str, value: Any = None) -> None: ...

    @abstractmethod
    async def read(self, *, agent_id: str) -> dict[str, Any] | None:
        """The entity state, or ``None`` if the entity does not exist."""

    async def wait_for(
        self,
        *,
        agent_id: str,
        condition: Callable[[dict[str, Any] | None], bool],
        within: float,
    ) -> tuple[bool, dict[str, Any] | None]:
        """Poll the state until ``condition`` holds (read-your-writes after a signal).

        Returns whether it held within ``within`` seconds and the last state read.
        """
        deadline = time.monotonic() + within
        delay = 0.005
        while True:
            state = await self.read(agent_id=agent_id)
            if condition(state):
                return True, state
            if time.monotonic() >= deadline:
                return False, state
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.25)
