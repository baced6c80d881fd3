"""``CachedAgentIndex``: any ``AgentIndex`` with a short-lived cache of active entries, so that the
two look-ups every event makes (accepting it over HTTP, routing it from the queue) rarely reach
the table."""

from __future__ import annotations

import time
from collections.abc import Sequence

from aos.ports.index import AgentIndex, IndexEntry, IndexStatus, Page, Recipient

__all__ = ["CachedAgentIndex"]


class CachedAgentIndex(AgentIndex):
    """Remembers ``active`` entries for ``ttl`` seconds, so that the two look-ups every event
    makes (accepting it over HTTP, routing it from the queue) rarely reach the table.

    Writes through this object forget the entry at once; another instance's change is seen within
    ``ttl``. The cost of that staleness: an event sent in the seconds before its agent is
    deregistered elsewhere may be signalled to the deleted entity, which refuses it (logged),
    instead of being dead-lettered.
    """

    def __init__(self, inner: AgentIndex, *, ttl: float = 2.0) -> None:
        self._inner = inner
        self._ttl = ttl
        self._entries: dict[str, tuple[float, IndexEntry]] = {}

    async def get(self, *, agent_id: str) -> IndexEntry | None:
        now = time.monotonic()
        cached = self._entries.get(agent_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        entry = await self._inner.get(agent_id=agent_id)
        if entry is not None and entry.status is IndexStatus.ACTIVE:
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.clear()  # bounded memory; a cold cache only costs look-ups
            self._entries[agent_id] = (now, entry)
        else:
            self._entries.pop(agent_id, None)
        return entry

    async def create(self, *, entry: IndexEntry) -> IndexEntry:
        self._entries.pop(entry.agent_id, None)
        return await self._inner.create(entry=entry)

    async def replace(self, *, entry: IndexEntry, previous: IndexEntry) -> IndexEntry:
        self._entries.pop(entry.agent_id, None)
        return await self._inner.replace(entry=entry, previous=previous)

    async def delete(self, *, entry: IndexEntry) -> None:
        self._entries.pop(entry.agent_id, None)
        await self._inner.delete(entry=entry)

    async def page(self, *, limit: int, continuation: str | None = None) -> Page[IndexEntry]:
        return await self._inner.page(limit=limit, continuation=continuation)

    async def subscribers(self, *, event_type: str) -> list[str]:
        return await self._inner.subscribers(event_type=event_type)

    async def recipients(self, *, event_type: str, agent_ids: Sequence[str]) -> list[Recipient]:
        """The inner index's, uncached: it reads a broadcast's recipients a range at a time,
        cheaper than a cache miss each."""
        return await self._inner.recipients(event_type=event_type, agent_ids=agent_ids)

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()


_CACHE_LIMIT = 10_000
