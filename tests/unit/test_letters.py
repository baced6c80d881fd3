"""The dead-letter service over the in-memory store: newest first, paging, replay once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aos.adapters.memory import InMemoryLetterStore
from aos.errors import LetterNotFoundError
from aos.ports.letters import StoredLetter, new_letter_id
from aos.ports.queue import DeadLetter, EventQueue
from aos.services.letters import DeadLetters, describe_original


class ListQueue(EventQueue):
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, *, message: str) -> None:
        self.sent.append(message)

    async def dead_letter(self, *, letter: DeadLetter) -> None:
        raise AssertionError("not used")

    async def ping(self) -> None:
        pass


def letter(original: str) -> DeadLetter:
    return DeadLetter(reason="r", original=original, dead_lettered_at="2026-01-01T00:00:00Z")


def test_ids_sort_newest_first() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [new_letter_id(now + timedelta(microseconds=n)) for n in range(3)]
    assert sorted(ids) == ids[::-1]


def test_describe_original_takes_only_strings() -> None:
    text = '{"event": {"event_id": "e1", "agent_id": 7, "type": "t"}}'
    assert describe_original(text) == {"event_id": "e1", "agent_id": None, "type": "t"}
    assert describe_original("[1]") == {"event_id": None, "agent_id": None, "type": None}
    assert describe_original("nope")["event_id"] is None


@pytest.mark.asyncio
async def test_page_and_replay_once() -> None:
    store, queue = InMemoryLetterStore(), ListQueue()
    letters = DeadLetters(store=store, queue=queue)
    stored = [await letters.record("deadletter", letter(f"m{i}")) for i in range(3)]
    first = await letters.page("deadletter", limit=2, continuation=None)
    assert [x.original for x in first.value] == ["m2", "m1"]
    second = await letters.page("deadletter", limit=2, continuation=first.continuation)
    assert [x.original for x in second.value] == ["m0"]
    assert second.continuation is None
    assert (await letters.page("poison", limit=2, continuation=None)).value == []

    replayed = await letters.replay("deadletter", stored[1].id)
    assert (replayed.id, replayed.event_id) == (stored[1].id, None)
    assert queue.sent == ["m1"]
    with pytest.raises(LetterNotFoundError):
        await letters.replay("deadletter", stored[1].id)
    with pytest.raises(LetterNotFoundError):
        await letters.get("poison", stored[0].id)
    assert queue.sent == ["m1"]


def test_stored_letter_keeps_every_field() -> None:
    dead = DeadLetter(
        reason="why",
        errors=[{"loc": ["event"], "msg": "m", "type": "t", "pointer": "/event"}],
        original="x",
        message_id="mid",
        dequeue_count=3,
        dead_lettered_at="2026-01-01T00:00:00Z",
    )
    stored = StoredLetter.of("poison", dead)
    assert (stored.queue, stored.reason, stored.errors, stored.message_id) == (
        "poison",
        "why",
        dead.errors,
        "mid",
    )
    assert stored.dequeue_count == 3
