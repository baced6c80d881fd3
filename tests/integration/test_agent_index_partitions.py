"""The sharded agents index against a real Azure Table (Azurite): listing across shards in the
in-memory adapter's order and pages, subscribers across shards (one request while there are few,
shard by shard when there are many), subscriptions moved by a replace, a crash between the writes
leaving no subscribed agent unfound, forged continuation tokens refused, and the legacy
single-partition layout migrated on first use."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
import pytest_asyncio
from azure.core.exceptions import ServiceRequestError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from aos.adapters.azure.agent_index import TableAgentIndex
from aos.adapters.azure.clients import table_client
from aos.adapters.azure.index_layout import LEGACY_PARTITION, MARKER, subscription_row
from aos.adapters.memory import InMemoryAgentIndex
from aos.domain.models import AgentSpec, format_timestamp
from aos.errors import AgentExistsError, InvalidInputError, StorageError
from aos.ports.index import AgentIndex, IndexEntry, IndexStatus, encode_token
from aos.settings import StorageConnection
from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = [pytest.mark.asyncio, pytest.mark.azurite]


@pytest_asyncio.fixture
async def client(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[TableClient]:
    connection = StorageConnection(connection_string=azurite.connection_string)
    client = table_client(connection, unique_name.table_name("Idx"))
    async with client:
        yield client


@pytest_asyncio.fixture
async def index(client: TableClient) -> TableAgentIndex:
    return TableAgentIndex(client)


def entry(
    agent_id: str, *subscriptions: str, status: IndexStatus = IndexStatus.ACTIVE
) -> IndexEntry:
    spec = AgentSpec(agent_id=agent_id, purpose="Grow", subscriptions=subscriptions)
    return IndexEntry(spec=spec, status=status)


def mixed_ids(n: int) -> list[str]:
    shapes: list[Callable[[int], str]] = [
        lambda i: f"agent-{i:06d}",
        lambda i: uuid.uuid4().hex,
        lambda i: f"shop-{i}.eu",
        lambda i: f"A{i}",
        lambda i: f"z_{i}-x.y",
        lambda i: str(i),
    ]
    return [shapes[i % len(shapes)](i) for i in range(n)]


async def each(items: Sequence[Any], operation: Callable[[Any], Awaitable[Any]]) -> None:
    gate = asyncio.Semaphore(16)

    async def one(item: Any) -> None:
        async with gate:
            await operation(item)

    await asyncio.gather(*(one(item) for item in items))


async def pages(index: AgentIndex, limit: int) -> list[tuple[list[str], str | None]]:
    result: list[tuple[list[str], str | None]] = []
    token: str | None = None
    while True:
        page = await index.page(limit=limit, continuation=token)
        result.append(([e.agent_id for e in page.value], page.continuation))
        token = page.continuation
        if token is None:
            return result


async def subscribed_unfound(index: AgentIndex) -> list[tuple[str, str]]:
    """(agent, type) for every active agent missing from the subscribers of a type it lists."""
    missing = []
    for listed, _ in await pages(index, 200):
        for agent_id in listed:
            found = await index.get(agent_id=agent_id)
            assert found is not None
            if found.status is IndexStatus.DEREGISTERING:
                continue
            for event_type in found.spec.subscriptions:
                probe = "anything" if event_type == "*" else event_type
                if agent_id not in await index.subscribers(event_type=probe):
                    missing.append((agent_id, event_type))
    return missing


async def test_listing_across_shards_matches_the_in_memory_order_and_pages(
    index: TableAgentIndex,
) -> None:
    memory = InMemoryAgentIndex()
    ids = mixed_ids(300)
    await each(ids, lambda i: index.create(entry=entry(i)))
    for agent_id in ids:
        await memory.create(entry=entry(agent_id))
    for limit in (7, 50, 200, 301, 1000):
        assert await pages(index, limit) == await pages(memory, limit), limit
    # a page of one, a few times: each continuation is the last id returned
    token = None
    for _ in range(5):
        table, mem = (
            await index.page(limit=1, continuation=token),
            await memory.page(limit=1, continuation=token),
        )
        assert [e.agent_id for e in table.value] == [e.agent_id for e in mem.value]
        assert table.continuation == mem.continuation
        token = table.continuation
    # a position that is no agent's id still lists what follows it
    after = (await index.page(limit=1000, continuation=encode_token("m"))).value
    assert [e.agent_id for e in after] == sorted(i for i in ids if i > "m")


async def test_an_empty_index_lists_nothing(index: TableAgentIndex) -> None:
    page = await index.page(limit=10)
    assert page.value == []
    assert page.continuation is None
    await index.ping()


@pytest.mark.parametrize(
    "token",
    [
        encode_token(5),
        encode_token(None),
        encode_token(""),
        encode_token(["a"]),
        encode_token({"PartitionKey": "agents", "RowKey": "a|x"}),
        encode_token("x" * 2000),
        encode_token("history|x"),
        encode_token("a/b"),
        encode_token("agent-1\n"),
        "!!!not base64",
        "e30",  # {} as base64url
    ],
)
async def test_forged_continuation_tokens_are_invalid_input(
    index: TableAgentIndex, token: str
) -> None:
    with pytest.raises(InvalidInputError):
        await index.page(limit=5, continuation=token)


async def test_subscribers_across_shards_include_the_wildcard(index: TableAgentIndex) -> None:
    memory = InMemoryAgentIndex()
    entries = [
        entry(
            f"agent-{i:03d}",
            *(["orders/created"] if i % 3 == 0 else []),
            *(["*"] if i % 7 == 0 else []),
            "other",
        )
        for i in range(60)
    ]
    await each(entries, lambda e: index.create(entry=e))
    for e in entries:
        await memory.create(entry=e)
    for event_type in ("orders/created", "other", "nobody.subscribes"):
        assert await index.subscribers(event_type=event_type) == await memory.subscribers(
            event_type=event_type
        )
    assert len(await index.subscribers(event_type="orders/created")) == 20 + 6


async def test_many_subscribers_are_read_shard_by_shard(
    index: TableAgentIndex, client: TableClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than one page (1,000 rows) of subscription rows: the rest is read per shard."""
    ids = [f"agent-{i:06d}" for i in range(2500)]
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for agent_id in ids:
        row = subscription_row("tick", entry(agent_id, "tick"))
        by_partition.setdefault(row["PartitionKey"], []).append(row)
    await index.ping()  # the table exists
    for rows in by_partition.values():
        for start in range(0, len(rows), 100):
            await client.submit_transaction([("upsert", r) for r in rows[start : start + 100]])
    shard_reads: list[str] = []
    read = index._shard_ids

    async def counted(partition: str, after: str | None) -> list[str]:
        shard_reads.append(partition)
        return await read(partition, after)

    monkeypatch.setattr(index, "_shard_ids", counted)
    assert await index.subscribers(event_type="tick") == ids
    assert 0 < len(shard_reads) <= 16
    assert await index.subscribers(event_type="tock") == []


async def test_recipients_are_checked_a_key_range_at_a_time(
    index: TableAgentIndex, client: TableClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broadcast's named recipients: the active subscribers come from their subscription rows
    (a range query per shard and type, no agent row read), in the order named; whoever left,
    never subscribed, is deregistering or was never registered is dropped; a registering one is
    read from its agent row and comes with its entry; the answers match the port's default (one
    look-up each) on the in-memory index."""
    memory = InMemoryAgentIndex()
    active = [entry(f"agent-{i:04d}", "tick") for i in range(300)]
    everything = entry("watcher", "*")
    other = entry("other-type", "tock")
    leaving = entry("leaving", "tick", status=IndexStatus.DEREGISTERING)
    joining = entry("joining", "tick", status=IndexStatus.REGISTERING)
    gone = entry("gone", "tick")
    for e in [*active, everything, other, leaving, joining, gone]:
        await index.create(entry=e)
        await memory.create(entry=e)
    await index.delete(entry=gone)
    await memory.delete(entry=gone)
    named = [
        "joining",
        *[e.agent_id for e in reversed(active)],
        "watcher",
        "other-type",
        "leaving",
        "gone",
        "never-registered",
    ]
    reads: list[str] = []
    read = index.get

    async def counted(*, agent_id: str) -> IndexEntry | None:
        reads.append(agent_id)
        return await read(agent_id=agent_id)

    monkeypatch.setattr(index, "get", counted)
    found = await index.recipients(event_type="tick", agent_ids=named)
    expected = await memory.recipients(event_type="tick", agent_ids=named)
    assert [r.agent_id for r in found] == [r.agent_id for r in expected]
    assert [r.agent_id for r in found] == named[: len(active) + 2]
    stored = {e.agent_id: await read(agent_id=e.agent_id) for e in [*active, everything, joining]}
    for recipient in found:
        entry_now = stored[recipient.agent_id]
        assert entry_now is not None
        assert recipient.generation == entry_now.generation
        assert (recipient.unfinished is not None) is (recipient.agent_id == "joining")
    assert sorted(reads) == ["joining", "leaving"]  # rows not saying active: the agent row


async def test_recipients_from_rows_without_a_status_read_the_agent_row(
    index: TableAgentIndex, client: TableClient
) -> None:
    """Subscription rows written before rows carried the agent's generation and status (or by
    hand) are still found; the agent row then says who is registered."""
    created = await index.create(entry=entry("older", "tick"))
    row = subscription_row("tick", created)
    await client.upsert_entity(
        {k: v for k, v in row.items() if k not in ("generation", "status")}, mode=UpdateMode.REPLACE
    )
    [recipient] = await index.recipients(event_type="tick", agent_ids=["older"])
    assert recipient.generation == created.generation
    assert recipient.unfinished is None


async def test_replace_moves_the_subscriptions(index: TableAgentIndex, client: TableClient) -> None:
    created = await index.create(entry=entry("mover", "a", "b"))
    await index.replace(
        entry=created.with_spec(created.spec.model_copy(update={"subscriptions": ("b", "c")})),
        previous=created,
    )
    assert await index.subscribers(event_type="a") == []
    assert await index.subscribers(event_type="b") == ["mover"]
    assert await index.subscribers(event_type="c") == ["mover"]
    rows = [
        r async for r in client.query_entities("PartitionKey ge 's|a|' and PartitionKey lt 's|a}'")
    ]
    assert rows == []


class Failing:
    """A table client whose ``method`` fails (as an unreachable Storage would) when ``when``
    says so; every other call goes to the real client."""

    def __init__(self, inner: TableClient, method: str, when: Callable[..., bool]) -> None:
        self._inner, self._method, self._when = inner, method, when

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._inner, name)
        if name != self._method:
            return real

        async def failing(*args: Any, **kwargs: Any) -> Any:
            if self._when(*args, **kwargs):
                raise ServiceRequestError("simulated crash")
            return await real(*args, **kwargs)

        return failing


def is_agent_row(first: Any, *_: Any, **__: Any) -> bool:
    partition = first["PartitionKey"] if isinstance(first, dict) else first
    return str(partition).startswith("a|")


async def test_a_crash_between_the_writes_leaves_no_subscribed_agent_unfound(
    client: TableClient,
) -> None:
    index = TableAgentIndex(client)
    kept = await index.create(entry=entry("kept", "x", "y"))
    # create: the subscription rows are written, the agent row is not
    crashing = TableAgentIndex(Failing(client, "create_entity", is_agent_row))  # type: ignore[arg-type]
    with pytest.raises(StorageError):
        await crashing.create(entry=entry("half", "x"))
    assert await index.get(agent_id="half") is None
    assert await subscribed_unfound(index) == []
    await index.create(entry=entry("half", "x"))  # repeating it finishes it
    # replace: the agent row is written, the dropped subscription's row is not deleted
    crashing = TableAgentIndex(Failing(client, "delete_entity", lambda *a, **k: True))  # type: ignore[arg-type]
    moved = kept.with_spec(kept.spec.model_copy(update={"subscriptions": ("y", "z")}))
    with pytest.raises(StorageError):
        await crashing.replace(entry=moved, previous=kept)
    assert (await index.get(agent_id="kept")).spec.subscriptions == ("y", "z")  # type: ignore[union-attr]
    assert await subscribed_unfound(index) == []
    assert "kept" in await index.subscribers(event_type="x")  # an extra: delivery re-checks it
    # delete: the subscription rows go, the agent row (deregistering) stays; repeating finishes
    stored = await index.get(agent_id="kept")
    assert stored is not None
    leaving = await index.replace(
        entry=stored.with_status(IndexStatus.DEREGISTERING), previous=stored
    )
    crashing = TableAgentIndex(Failing(client, "delete_entity", is_agent_row))  # type: ignore[arg-type]
    with pytest.raises(StorageError):
        await crashing.delete(entry=leaving)
    assert await subscribed_unfound(index) == []
    await index.delete(entry=leaving)
    await index.delete(entry=leaving)  # missing rows are fine
    assert await index.get(agent_id="kept") is None
    assert "kept" not in await index.subscribers(event_type="y")
    with pytest.raises(AgentExistsError):
        await index.create(entry=entry("half"))


def legacy_rows(e: IndexEntry) -> list[dict[str, Any]]:
    """The rows the single-partition adapter wrote for ``e``."""
    agent = {
        "PartitionKey": LEGACY_PARTITION,
        "RowKey": f"a|{e.agent_id}",
        "agent_id": e.agent_id,
        "kind": e.spec.kind,
        "status": e.status.value,
        "spec": json.dumps(e.spec.model_dump(mode="json")),
        "registered_at": format_timestamp(e.registered_at),
        "updated_at": format_timestamp(e.updated_at),
    }
    subscriptions = [
        {
            "PartitionKey": LEGACY_PARTITION,
            "RowKey": f"s|{t.replace('/', '%2F')}|{e.agent_id}",
            "agent_id": e.agent_id,
            "event_type": t,
        }
        for t in e.spec.subscriptions
    ]
    return [agent, *subscriptions]


async def test_legacy_rows_are_migrated_on_first_use(client: TableClient) -> None:
    entries = [
        entry(agent_id, *(["orders/created"] if n % 2 else ["*"]), "tick")
        for n, agent_id in enumerate(mixed_ids(40))
    ]
    await client.create_table()
    for e in entries:
        await client.submit_transaction([("create", row) for row in legacy_rows(e)])
    # two instances start at once: both migrate, harmlessly
    first, second = TableAgentIndex(client), TableAgentIndex(client)
    listed = await asyncio.gather(first.page(limit=1000), second.page(limit=1000))
    ids = sorted(e.agent_id for e in entries)
    for page in listed:
        assert [e.agent_id for e in page.value] == ids
    for e in entries:
        got = await first.get(agent_id=e.agent_id)
        assert got is not None
        assert got.spec == e.spec
        assert got.registered_at == e.registered_at
    subscribed = await first.subscribers(event_type="orders/created")
    assert subscribed == ids  # half by the type, half by "*"
    assert await first.subscribers(event_type="tick") == ids
    legacy = [r async for r in client.query_entities(f"PartitionKey eq '{LEGACY_PARTITION}'")]
    assert legacy == []
    marker = await client.get_entity(*MARKER)
    assert marker["shards"] == 16
    # a later instance finds nothing to do, and the migrated agents are writable as usual
    third = TableAgentIndex(client)
    assert [e.agent_id for e in (await third.page(limit=1000)).value] == ids
    stored = await third.get(agent_id=ids[0])
    assert stored is not None
    leaving = stored.with_status(IndexStatus.DEREGISTERING)
    assert (await third.replace(entry=leaving, previous=stored)).status is IndexStatus.DEREGISTERING
