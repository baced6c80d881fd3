"""``AgentIndex`` on an Azure Table (Azurite locally), spread over hash shards.

The row layout (and why: no partition may get hot at 100,000 agents) is in ``index_layout``.
Table transactions are single-partition, and an agent's rows now live in different partitions,
so consistency comes from the order of the writes instead. The agent row is the truth (its spec
lists the subscriptions); subscription rows are an index that may briefly hold extras but never
misses one:

* create / replace: upsert the subscription rows of the new spec, then write the agent row
  (insert, or replace matched by ETag), then delete the rows of subscriptions it dropped;
* delete: delete the subscription rows, then the agent row (repeating a delete finishes it).

A crash at any point leaves every subscribed agent findable. Subscription rows carry the
agent's generation and status (written before the agent row, so they may say ``deregistering``
a moment before it does, never ``active`` before the entity is configured); a broadcast's delivery
trusts an ``active`` row and reads the agent row for any other (``recipients``). So an extra row
left by a crash or a replace in flight, of a type the agent just dropped, may bring it one more
event of that type. Known gap: two concurrent
replaces of one agent, one dropping a type the other adds back, can lose that row in a narrow
window; the next replace of that agent upserts all its rows again and repairs it.

Legacy tables (one partition ``"agents"``) are migrated on first use by each instance; see
``_migrate``.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from aos.adapters.azure.index_layout import (
    LEGACY_PARTITION,
    MARKER,
    SHARDS,
    agent_partition,
    agent_row,
    entry_from_row,
    key,
    shard_of,
    subscription_key,
    subscription_partition,
    subscription_row,
    subscription_shards,
)
from aos.adapters.azure.tables import TableAdapter, storage_error
from aos.errors import AgentExistsError, ConflictError, StorageError
from aos.ports.index import (
    AgentIndex,
    IndexEntry,
    IndexStatus,
    Page,
    Recipient,
    decode_position,
    encode_token,
)

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient

__all__ = ["TableAgentIndex"]

T = TypeVar("T")
CONCURRENCY = 8
"""Requests one index call keeps in flight at once (shard reads, subscription writes)."""
_MAX_PAGE = 1000  # the most rows the service returns per query request


class TableAgentIndex(TableAdapter, AgentIndex):
    def __init__(self, client: TableClient) -> None:
        super().__init__(client)
        self._ready = False
        self._readying = asyncio.Lock()

    async def ping(self) -> None:
        with suppress(ResourceNotFoundError):  # reached the table: that is all a ping asks
            await self._call(lambda: self._client.get_entity(*MARKER))

    # ------------------------------------------------------------------------------ reads
    async def get(self, *, agent_id: str) -> IndexEntry | None:
        return await self._call(lambda: self._read(agent_id))

    async def _read(self, agent_id: str) -> IndexEntry | None:
        shard = agent_partition(shard_of(agent_id))
        try:
            row = await self._client.get_entity(shard, key(agent_id))
        except ResourceNotFoundError:
            return None
        return entry_from_row(row)

    async def page(self, *, limit: int, continuation: str | None = None) -> Page[IndexEntry]:
        """A k-way merge: the first ``limit + 1`` agents after the position from every shard (in
        parallel), merged in id order; the extra one says whether there is a next page."""
        after = decode_position(continuation) if continuation else None
        shards = await self._call(
            lambda: self._each(
                range(SHARDS), lambda shard: self._first_agents(shard, after, limit + 1)
            )
        )
        merged = list(heapq.merge(*shards, key=lambda row: str(row["agent_id"])))
        chosen = [entry_from_row(row) for row in merged[:limit]]
        more = len(merged) > limit
        return Page(chosen, encode_token(chosen[-1].agent_id) if more and chosen else None)

    async def subscribers(self, *, event_type: str) -> list[str]:
        found = await self._call(lambda: self._each((event_type, "*"), self._subscribed))
        return sorted({agent_id for ids in found for agent_id in ids})

    async def recipients(self, *, event_type: str, agent_ids: Sequence[str]) -> list[Recipient]:
        """The subscription rows of the named agents, read a key range at a time: per shard
        that holds any of them, the rows of ``event_type`` and of ``*`` between the first and
        the last of their ids (a message names the subscribers of its publish time, so those
        ranges hold little else). A row that says its agent is ``active`` is enough; the agent
        row is read for any other (registering, deregistering, or written by a version before
        rows carried their status). Cost: about one request per 1,000 recipients, instead of
        one per recipient."""
        wanted = list(dict.fromkeys(agent_ids))
        by_shard: dict[int, list[str]] = {}
        for agent_id in wanted:
            by_shard.setdefault(shard_of(agent_id), []).append(agent_id)
        ranges = [
            (subscription_partition(t, shard), key(min(ids)), key(max(ids)))
            for shard, ids in by_shard.items()
            for t in dict.fromkeys((event_type, "*"))
        ]
        found = await self._call(lambda: self._each(ranges, lambda r: self._range_rows(*r)))
        rows: dict[str, Any] = {}
        for row in (row for shard_rows in found for row in shard_rows):
            agent_id = str(row["agent_id"])
            if agent_id not in rows or row.get("status") == IndexStatus.ACTIVE.value:
                rows[agent_id] = row
        settled: dict[str, Recipient] = {}
        unsure: list[str] = []
        for agent_id in wanted:
            row = rows.get(agent_id)
            if row is None:
                continue  # unsubscribed or deregistered since the message was written
            if row.get("status") == IndexStatus.ACTIVE.value and row.get("generation"):
                settled[agent_id] = Recipient(agent_id, str(row["generation"]))
            else:
                unsure.append(agent_id)
        for recipient in await super().recipients(event_type=event_type, agent_ids=unsure):
            settled[recipient.agent_id] = recipient
        return [settled[agent_id] for agent_id in wanted if agent_id in settled]

    async def _range_rows(self, partition: str, first: str, last: str) -> list[Any]:
        rows = self._client.query_entities(
            "PartitionKey eq @pk and RowKey ge @first and RowKey le @last",
            parameters={"pk": partition, "first": first, "last": last},
            select=["agent_id", "generation", "status"],
            results_per_page=_MAX_PAGE,
        )
        return [row async for row in rows]

    async def _first_agents(self, shard: int, after: str | None, count: int) -> list[Any]:
        query, parameters = "PartitionKey eq @pk", {"pk": agent_partition(shard)}
        if after is not None:
            query, parameters = query + " and RowKey gt @after", parameters | {"after": key(after)}
        rows: list[Any] = []
        pages = self._client.query_entities(
            query, parameters=parameters, results_per_page=min(count, _MAX_PAGE)
        ).by_page()
        async for page in pages:  # a page may come back short: read on until ``count``
            rows += [row async for row in page]
            if len(rows) >= count:
                break
        return rows[:count]

    async def _subscribed(self, event_type: str) -> list[str]:
        """One range query over the type's shards: a single request while it has up to 1,000
        subscribers. If there are more, the rest is read shard by shard, in parallel."""
        first, last = subscription_shards(event_type)
        pages = self._client.query_entities(
            "PartitionKey ge @first and PartitionKey le @last",
            parameters={"first": first, "last": last},
            select=["PartitionKey", "RowKey", "agent_id"],
        ).by_page()
        rows: list[Any] = []
        async for page in pages:
            rows = [row async for row in page]
            break
        ids = [str(row["agent_id"]) for row in rows]
        if not pages.continuation_token:  # type: ignore[attr-defined]
            return ids
        # Rows come in (PartitionKey, RowKey) order: shards before the last row's are complete.
        done_pk, done_rk = (rows[-1]["PartitionKey"], rows[-1]["RowKey"]) if rows else ("", "")
        rest = [
            (subscription_partition(event_type, s), done_rk if pk == done_pk else None)
            for s in range(SHARDS)
            if (pk := subscription_partition(event_type, s)) >= done_pk
        ]
        more = await self._each(rest, lambda part: self._shard_ids(*part))
        return ids + [agent_id for shard in more for agent_id in shard]

    async def _shard_ids(self, partition: str, after: str | None) -> list[str]:
        query, parameters = "PartitionKey eq @pk", {"pk": partition}
        if after is not None:
            query, parameters = query + " and RowKey gt @after", parameters | {"after": after}
        rows = self._client.query_entities(query, parameters=parameters, select=["agent_id"])
        return [str(row["agent_id"]) async for row in rows]

    # ------------------------------------------------------------------------------ writes
    async def create(self, *, entry: IndexEntry) -> IndexEntry:
        await self._call(lambda: self._upsert_subscriptions(entry, entry.spec.subscriptions))
        try:
            await self._call(lambda: self._client.create_entity(agent_row(entry)))
        except ResourceExistsError as exc:
            raise AgentExistsError(entry.agent_id) from exc
        return await self._reload(entry)

    async def replace(self, *, entry: IndexEntry, previous: IndexEntry) -> IndexEntry:
        # Every row of the new spec, not only the added ones: a replace also repairs a lost row,
        # and the rows carry the status (``index_layout.subscription_row``).
        await self._call(lambda: self._upsert_subscriptions(entry, entry.spec.subscriptions))
        try:
            await self._call(
                lambda: self._client.update_entity(
                    agent_row(entry),
                    mode=UpdateMode.REPLACE,
                    etag=previous.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConflictError(
                f"Agent {entry.agent_id!r} was changed or removed concurrently; retry"
            ) from exc
        dropped = set(previous.spec.subscriptions) - set(entry.spec.subscriptions)
        await self._call(lambda: self._delete_subscriptions(entry.agent_id, dropped))
        return await self._reload(entry)

    async def delete(self, *, entry: IndexEntry) -> None:
        current = await self.get(agent_id=entry.agent_id)
        types = set(entry.spec.subscriptions) | set(current.spec.subscriptions if current else ())
        await self._call(lambda: self._delete_subscriptions(entry.agent_id, types))
        row = agent_row(entry)
        await self._call(lambda: self._client.delete_entity(row["PartitionKey"], row["RowKey"]))

    async def _upsert_subscriptions(self, entry: IndexEntry, types: Iterable[str]) -> None:
        rows = [subscription_row(t, entry) for t in sorted(types)]
        await self._each(rows, lambda row: self._client.upsert_entity(row, mode=UpdateMode.REPLACE))

    async def _delete_subscriptions(self, agent_id: str, types: Iterable[str]) -> None:
        async def one(keys: tuple[str, str]) -> None:
            with suppress(ResourceNotFoundError):
                await self._client.delete_entity(*keys)

        await self._each([subscription_key(t, agent_id) for t in sorted(types)], one)

    # ------------------------------------------------------------------------------ migration
    async def _migrate(self) -> None:
        """Move legacy rows (one partition ``"agents"``) into the sharded layout: per agent,
        its subscription rows, then its agent row, then the legacy rows (one transaction: they
        share the legacy partition). Idempotent, and harmless when several instances run it at
        once: an agent row is inserted, never overwritten unless the legacy copy is newer (an
        instance of the previous version may still have written it), and a legacy row is
        deleted only if unchanged since it was copied (else the next migration copies it)."""
        legacy = self._client.query_entities(
            "PartitionKey eq @pk and RowKey ge 'a|' and RowKey lt 'a}'",
            parameters={"pk": LEGACY_PARTITION},
        )
        await self._each([row async for row in legacy], self._migrate_agent)

    async def _migrate_agent(self, legacy: Any) -> None:
        entry = entry_from_row(legacy)
        await self._upsert_subscriptions(entry, entry.spec.subscriptions)
        try:
            await self._client.create_entity(agent_row(entry))
        except ResourceExistsError:
            current = await self._read(entry.agent_id)
            if current is not None and current.updated_at < entry.updated_at:
                with suppress(ResourceModifiedError, ResourceNotFoundError):
                    await self._client.update_entity(
                        agent_row(entry),
                        mode=UpdateMode.REPLACE,
                        etag=current.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
        condition = {
            "etag": legacy.metadata["etag"],
            "match_condition": MatchConditions.IfNotModified,
        }
        rows = [
            {"PartitionKey": LEGACY_PARTITION, "RowKey": f"s|{key(t)}|{entry.agent_id}"}
            for t in entry.spec.subscriptions
        ]
        operations: list[Any] = [("delete", row) for row in rows]
        operations.append(("delete", legacy, condition))
        try:
            await self._client.submit_transaction(operations)
        except HttpResponseError:  # some already gone (another instance), or the agent changed
            for row in rows:
                with suppress(ResourceNotFoundError):
                    await self._client.delete_entity(row["PartitionKey"], row["RowKey"])
            with suppress(ResourceNotFoundError, ResourceModifiedError):  # changed: next run
                await self._client.delete_entity(legacy, **condition)

    # ------------------------------------------------------------------------------ plumbing
    async def _reload(self, entry: IndexEntry) -> IndexEntry:
        stored = await self.get(agent_id=entry.agent_id)
        if stored is None:  # removed between the write and the read: report it as a conflict
            raise ConflictError(f"Agent {entry.agent_id!r} was removed concurrently")
        return stored

    async def _ensure_ready(self) -> None:
        """Once per instance: the table exists, legacy rows are migrated, the layout matches."""
        if self._ready:
            return
        async with self._readying:
            if not self._ready:
                await self._prepare()
                self._ready = True

    async def _prepare(self) -> None:
        await self._ensure_table()
        await self._migrate()
        try:
            marker = await self._client.get_entity(*MARKER)
        except ResourceNotFoundError:
            layout = {"PartitionKey": MARKER[0], "RowKey": MARKER[1], "shards": SHARDS}
            with suppress(ResourceExistsError):
                await self._client.create_entity(layout)
        else:
            if marker.get("shards") != SHARDS:
                raise StorageError(
                    f"The agents index was written with {marker.get('shards')} shards; "
                    f"this version uses {SHARDS}"
                )

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        async with self._translated():
            await self._ensure_ready()
            return await operation()

    async def _each(
        self, items: Iterable[Any], operation: Callable[[Any], Awaitable[T]]
    ) -> list[T]:
        """``operation`` on every item, at most ``CONCURRENCY`` at once, results in order."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def gated(item: Any) -> T:
            async with gate:
                return await operation(item)

        return list(await asyncio.gather(*(gated(item) for item in items)))

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        """Map SDK errors to AOS ones at the edge; expected ones pass through for the caller."""
        try:
            yield
        except (ResourceNotFoundError, ResourceExistsError, ResourceModifiedError):
            raise
        except AzureError as exc:
            raise storage_error(exc, "The agents index") from exc
