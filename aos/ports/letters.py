"""Port: messages set aside (dead-lettered, poisoned) kept so they can be listed, paged and
replayed (``LetterStore``), and the letter's id scheme.

Letter ids sort newest first: ``10**17`` minus microseconds since the epoch, zero-padded, then
8 hex characters. The Azure Table adapter is ``aos.adapters.azure.letters``; the in-memory one is
in ``aos.adapters.memory``."""

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
