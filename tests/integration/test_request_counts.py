"""What one event costs in storage requests: counted on the app's own SDK clients (an azure-core
hook added through ``aos.adapters.azure.clients.REQUEST_HOOKS``), on the direct path
(``POST /api/agents/{id}/events`` → queue → delivery → entity → history) and per recipient of a
broadcast (``POST /api/events``). The counts may only go down: a change that adds a request per
event fails here (lower the figures here and in docs/PERFORMANCE.md, "Storage requests per
event", when they go down).

Counted: the app's requests (HTTP functions, the queue function, the entity batch's archive
write). Not counted, because in Azure the Functions host and the Durable extension make them, not
the app: receiving and deleting the queue message, and storing the signal and the entity state
(the local host stands in for those here). The index cache (2 s) is switched off, so every look-up
is paid: the cost of an agent that gets an event less often than every 2 seconds."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from urllib.parse import unquote, urlsplit

import pytest
import pytest_asyncio
from azure.core.pipeline import PipelineRequest
from azure.core.rest import HttpRequest
from harness import Aos, running_aos

from aos.adapters.azure import clients
from aos.adapters.azure.index_layout import SHARDS
from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = [pytest.mark.asyncio, pytest.mark.azurite]

EVENTS = 10
SUBSCRIBERS = 10

DIRECT_PER_EVENT = {
    "table get": 2,  # the index: accepting the event, routing it
    "queue send": 1,
    "table insert": 1,  # the delivery receipt's claim
    "table merge": 1,  # the receipt marked signalled
    "table upsert": 1,  # the history record (a batch of up to 4 records: single upserts)
}
"""6 requests per event, none of them a query (measured when this test was written)."""

BROADCAST_PER_RECIPIENT = {"table upsert": 1}
"""The history record. The receipts are recorded a group at a time, and the index read a key range
at a time, so they are counted per message below."""
BROADCAST_PER_EVENT = {
    # the subscribers of the type and of "*" (a page per 1,000 each) when publishing; then, on
    # delivery, the recipients' subscription rows: a range per shard holding any, per type and "*";
    # and whether any delivery claimed the event before (one row of its receipts' partition)
    "table query": 2 + 2 * SHARDS + 1,
    "queue send": 1,  # one message naming them all
    "table transaction": 1,  # unclaimed: the receipts recorded after the signals, per 100
}
"""Per broadcast (not per recipient)."""


class Counting:
    """Counts requests by kind: table or queue, and what is done. Creating a table or a queue is
    left out: each client does it once (the archive writer has one client per worker thread)."""

    def __init__(self, tables: set[str], queues: set[str]) -> None:
        self.tables, self.queues = tables, queues
        self.counts: Counter[str] = Counter()

    def __call__(self, request: PipelineRequest[HttpRequest]) -> None:
        http = request.http_request
        self.counts[self.kind(http.method, unquote(urlsplit(http.url).path))] += 1

    def kind(self, method: str, path: str) -> str:
        parts = path.strip("/").split("/")
        name = parts[1] if len(parts) > 1 else ""
        resource = name.split("(")[0]
        if name == "$batch":
            return "table transaction"
        if resource == "Tables":
            return "table create"
        if resource in self.tables:
            if "(PartitionKey=" in name:
                return {
                    "GET": "table get",
                    "PUT": "table upsert",
                    "PATCH": "table merge",
                    "MERGE": "table merge",
                    "DELETE": "table delete",
                }[method]
            return {"GET": "table query", "POST": "table insert"}[method]
        if name in self.queues:
            if parts[2:3] == ["messages"]:
                return {"POST": "queue send", "GET": "queue receive", "DELETE": "queue delete"}[
                    method
                ]
            return "queue create" if method == "PUT" else f"queue {method}"
        return f"other {method} {path}"

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return Counter({k: v for k, v in counts.items() if not k.endswith(" create")})


@pytest.fixture
def counting(unique_name: UniqueName) -> Iterator[Counting]:
    from harness import settings_for

    settings = settings_for("", unique_name)
    policy = Counting(
        {settings.agents_table, settings.history_table, settings.deadletter_table},
        {settings.events_queue, settings.deadletter_queue, settings.maintenance_queue},
    )
    clients.REQUEST_HOOKS.append(policy)
    try:
        yield policy
    finally:
        clients.REQUEST_HOOKS.remove(policy)


@pytest_asyncio.fixture
async def aos(azurite: Azurite, unique_name: UniqueName, counting: Counting) -> AsyncIterator[Aos]:
    async with running_aos(azurite.connection_string, unique_name) as running:
        running.runtime.storage().index._ttl = 0.0  # type: ignore[attr-defined]  # no cache
        yield running


def per(counts: Counter[str], n: int) -> dict[str, float]:
    return {kind: count / n for kind, count in sorted(counts.items())}


def over(counts: Counter[str], limits: Counter[str]) -> dict[str, tuple[int, int]]:
    """The kinds of request made more often than their limit: (made, limit)."""
    return {k: (v, limits[k]) for k, v in counts.items() if v > limits[k]}


async def test_requests_per_event_on_the_direct_path(aos: Aos, counting: Counting) -> None:
    await aos.register("a1")
    for n in range(2):  # warm-up: tables and queues created, clients connected
        await aos.call("POST", "agents/a1/events", {"event_id": f"w{n}", "type": "t"})
        await aos.deliver_queued()
    counting.take()
    for n in range(EVENTS):
        response = await aos.call("POST", "agents/a1/events", {"event_id": f"e{n}", "type": "t"})
        assert response.status == 202
        assert await aos.deliver_queued() == 1
    counts = counting.take()
    print("direct path, requests per event:", per(counts, EVENTS))
    limits = Counter({k: v * EVENTS for k, v in DIRECT_PER_EVENT.items()})
    assert not over(counts, limits), over(counts, limits)
    assert (await aos.call("GET", "agents/a1")).json["counters"]["events_handled"] == EVENTS + 2


async def test_requests_per_recipient_of_a_broadcast(aos: Aos, counting: Counting) -> None:
    agents = [f"s{i}" for i in range(SUBSCRIBERS)]
    for agent_id in agents:
        await aos.register(agent_id, subscriptions=["tick"])
    await aos.call("POST", "events", {"event_id": "warm", "type": "tick"})
    await aos.deliver_queued()
    counting.take()
    response = await aos.call("POST", "events", {"event_id": "b1", "type": "tick"})
    assert response.json["subscribers"] == SUBSCRIBERS
    assert await aos.deliver_queued() == 1
    counts = counting.take()
    print("broadcast, requests per recipient:", per(counts, SUBSCRIBERS))
    expected = Counter({k: v * SUBSCRIBERS for k, v in BROADCAST_PER_RECIPIENT.items()}) + Counter(
        BROADCAST_PER_EVENT
    )
    assert not over(counts, expected), over(counts, expected)
    for agent_id in agents:
        state = (await aos.call("GET", f"agents/{agent_id}")).json
        assert state["counters"]["events_handled"] == 2
