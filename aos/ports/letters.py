"""Dead-lettered and poisoned messages in an Azure Table, so they can be listed, paged and replayed.

A queue cannot be paged or read by id (peeking shows the first 32 messages), so every letter is
also a row of ``AOS_DEADLETTER_TABLE``:

    PartitionKey   "deadletter" | "poison"      which path set it aside
    RowKey         "<inverted µs>-<8 hex>"     newest first; also the letter's id in the API

The inverted timestamp (``10**17`` minus microseconds since the epoch, zero-padded) makes the
table's ascending key order the newest-first order the API pages in. The original message (up to
64 KB) and the errors are JSON text split over ``<name>0``, ``<name>1``, ... like the history
payload: a string property holds at most 32 K UTF-16 characters.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from aos.domain.models import utc_now
from aos.ports.index import Page

if TYPE_CHECKING:
    from aos.ports.queue import DeadLetter

__all__ = ["LETTER_QUEUES", "LetterQueue", "LetterStore", "StoredLetter", "new_letter_id"]


LetterQueue = Literal["deadletter", "poison"]


LETTER_QUEUES: tuple[LetterQueue, ...] = ("deadletter", "poison")


_EPOCH_SPAN = 10**17


def new_letter_id(at: datetime | None = None) -> str:
    """A row key that sorts newest first (and is a valid path id: digits, '-' and hex)."""
    moment = at or utc_now()
    micros = int(moment.timestamp() * 1_000_000)
    return f"{_EPOCH_SPAN - micros:017d}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """A letter as stored: the ``DeadLetter`` fields plus its id, queue and the row's ETag."""

    id: str
    queue: LetterQueue
    reason: str
    original: str
    dead_lettered_at: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    message_id: str | None = None
    dequeue_count: int | None = None
    etag: str | None = None

    @classmethod
    def of(
        cls, queue: LetterQueue, letter: DeadLetter, letter_id: str | None = None
    ) -> StoredLetter:
        return cls(
            id=letter_id or new_letter_id(),
            queue=queue,
            reason=letter.reason,
            original=letter.original,
            dead_lettered_at=letter.dead_lettered_at,
            errors=list(letter.errors),
            message_id=letter.message_id,
            dequeue_count=letter.dequeue_count,
        )


class LetterStore(ABC):
    """Port for the inspectable record of dead-lettered and poisoned messages."""

    @abstractmethod
    async def add(self, *, letter: StoredLetter) -> StoredLetter: ...

    @abstractmethod
    async def get(self, *, queue: LetterQueue, letter_id: str) -> StoredLetter | None: ...

    @abstractmethod
    async def page(
        self, *, queue: LetterQueue, limit: int, continuation: str | None = None
    ) -> Page[StoredLetter]:
        """Newest first; ``continuation`` is the token of the previous page."""

    @abstractmethod
    async def remove(self, *, letter: StoredLetter) -> bool:
        """Delete the letter if it is unchanged since read (its ETag); ``False`` if it is gone or
        changed, i.e. someone else replayed it first."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
