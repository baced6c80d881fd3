"""A crash between the index write and the entity write leaves a state that a retry finishes:
never an agent that is listed but unreachable for good, or reachable but unlisted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from harness import Aos, running_aos

from aos.api.schemas import AgentResource
from aos.domain.models import AgentSpec
from aos.errors import ConflictError
from aos.ports.index import IndexEntry, IndexStatus
from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def aos(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[Aos]:
    async with running_aos(azurite.connection_string, unique_name) as running:
        yield running


async def crash_after_index_write(aos: Aos, agent_id: str) -> None:
    """What a crash right after the first write of a registration leaves behind."""
    index = aos.runtime.storage().index
    await index.create(entry=IndexEntry(spec=AgentSpec(agent_id=agent_id, purpose="Grow")))


async def test_an_interrupted_registration_is_listed_as_such_and_finished_by_a_retry(
    aos: Aos,
) -> None:
    await crash_after_index_write(aos, "a1")
    listed = (await aos.call("GET", "agents")).json["value"]
    assert [(a["agent_id"], a["status"]) for a in listed] == [("a1", "registering")]
    assert (await aos.call("GET", "agents/a1")).status == 404  # no entity yet

    # Repeating the registration finishes it.
    finished = await aos.call("POST", "agents", {"agent_id": "a1", "purpose": "Grow"})
    assert finished.status == 201
    assert finished.json["status"] == "active"


async def test_an_event_sent_meanwhile_finishes_an_interrupted_registration(aos: Aos) -> None:
    """Never retried into the poison queue: delivery configures the entity from the index."""
    await crash_after_index_write(aos, "a1")
    assert (
        await aos.call("POST", "agents/a1/events", {"event_id": "e1", "type": "t"})
    ).status == 202
    (message,) = await aos.queued()
    await aos.deliver(message)
    assert (await aos.call("GET", "agents/a1")).json["counters"]["events_handled"] == 1
    (listed,) = (await aos.call("GET", "agents")).json["value"]
    assert listed["status"] == "active"


async def test_a_put_also_finishes_an_interrupted_registration(aos: Aos) -> None:
    await crash_after_index_write(aos, "a1")
    response = await aos.call("PUT", "agents/a1", {"purpose": "Grow"})
    assert response.status == 201
    assert response.json["status"] == "active"


async def test_an_interrupted_deregistration_refuses_new_work_and_a_retry_finishes_it(
    aos: Aos,
) -> None:
    await aos.register("a1")
    index = aos.runtime.storage().index
    entry = await index.get(agent_id="a1")
    assert entry is not None
    # The crash happened after the index row was marked, before the entity was deleted.
    await index.replace(entry=entry.with_status(IndexStatus.DEREGISTERING), previous=entry)

    assert (await aos.call("POST", "agents/a1/events", {"type": "t"})).status == 404
    assert (await aos.call("POST", "agents", {"agent_id": "a1", "purpose": "x"})).status == 409
    assert (await aos.call("PATCH", "agents/a1", {"purpose": "x"})).status == 404

    assert (await aos.call("DELETE", "agents/a1")).status == 204
    assert (await aos.call("GET", "agents/a1")).status == 404
    assert (await aos.call("GET", "agents")).json["value"] == []


async def test_concurrent_changes_to_one_agent_do_not_interleave(aos: Aos) -> None:
    """The index is guarded by ETags: a change based on a stale read is a 409, not a lost write."""
    await aos.register("a1")
    index = aos.runtime.storage().index
    stale = await index.get(agent_id="a1")
    assert stale is not None
    await aos.call("PATCH", "agents/a1", {"purpose": "Newer"})
    with pytest.raises(ConflictError):
        await index.replace(entry=stale.with_status(IndexStatus.DEREGISTERING), previous=stale)
    entry = await index.get(agent_id="a1")
    assert entry is not None
    assert (entry.status, entry.spec.purpose) == (IndexStatus.ACTIVE, "Newer")
    assert AgentResource.from_entry(entry).model_dump(mode="json")["purpose"] == "Newer"
