"""A broadcast that storage interrupts says how far it got, so the client can publish it again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aos import AgentKinds, Event, Limits, StorageError
from aos.api.problems import problem_response
from aos.errors import PartialPublishError
from aos.ports.entity_client import EntityClient
from aos.ports.index import AgentIndex, IndexEntry, Page
from aos.ports.queue import DeadLetter, EventQueue
from aos.services.agents import AgentService

SUBSCRIBERS = [f"agent-{i:05d}-" + "x" * 50 for i in range(3_000)]  # three queue messages


class Subscribers(AgentIndex):
    async def get(self, *, agent_id: str) -> IndexEntry | None:
        return None

    async def create(self, *, entry: IndexEntry) -> IndexEntry:
        raise NotImplementedError

    async def replace(self, *, entry: IndexEntry, previous: IndexEntry) -> IndexEntry:
        raise NotImplementedError

    async def delete(self, *, entry: IndexEntry) -> None:
        raise NotImplementedError

    async def page(self, *, limit: int, continuation: str | None = None) -> Page[IndexEntry]:
        return Page([])

    async def subscribers(self, *, event_type: str) -> list[str]:
        return SUBSCRIBERS

    async def ping(self) -> None:
        pass


class FailingQueue(EventQueue):
    """Accepts ``accept`` messages, then storage fails."""

    def __init__(self, accept: int) -> None:
        self.accept = accept
        self.sent: list[str] = []

    async def send(self, *, message: str) -> None:
        if len(self.sent) == self.accept:
            raise StorageError("Queue 'aos-events' unavailable")
        self.sent.append(message)

    async def dead_letter(self, *, letter: DeadLetter) -> None:
        raise NotImplementedError

    async def ping(self) -> None:
        pass


class NoEntities(EntityClient):
    async def signal(self, *, agent_id: str, operation: str, value: Any = None) -> None:
        raise NotImplementedError

    async def read(self, *, agent_id: str) -> dict[str, Any] | None:
        return None


def manager(queue: EventQueue) -> AgentService:
    return AgentService(
        index=Subscribers(),
        queue=queue,
        entities=NoEntities(),
        kinds=AgentKinds.builtin(),
        limits=Limits(),
    )


@pytest.mark.asyncio
async def test_a_publish_interrupted_by_storage_says_what_was_queued() -> None:
    queue = FailingQueue(accept=1)
    with pytest.raises(PartialPublishError) as caught:
        await manager(queue).publish_event(Event(event_id="b1", type="tick"))
    queued = len(json.loads(queue.sent[0])["recipients"])
    assert 0 < queued < len(SUBSCRIBERS)
    assert caught.value.extensions == {
        "event_id": "b1",
        "subscribers_queued": queued,
        "subscribers": len(SUBSCRIBERS),
    }
    answer = problem_response(caught.value)
    body = json.loads(answer.get_body())
    assert answer.status_code == 503
    assert (body["event_id"], body["subscribers_queued"]) == ("b1", queued)
    assert "same event_id" in body["detail"]


@pytest.mark.asyncio
async def test_a_publish_that_queued_nothing_is_a_plain_storage_error() -> None:
    with pytest.raises(StorageError) as caught:
        await manager(FailingQueue(accept=0)).publish_event(Event(event_id="b1", type="tick"))
    assert not isinstance(caught.value, PartialPublishError)
