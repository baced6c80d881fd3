"""The history archive: every handled event and every decision of every agent, kept outside the
entity so that the entity's state stays bounded while nothing is forgotten.

Records are produced by the agent inside the entity's batch and written when the batch ends (see
``aos.functions.entity_function``). Their row keys come from the entity state alone:

    history|<inverted generation>|<inverted sequence>

* the *generation* is the agent's ``created_at``: an agent deregistered and registered again under
  the same id starts a new generation, so its history never overwrites the old one's;
* the *sequence* is ``events_handled + decisions_made + events_failed`` right after the record's
  change, so it grows by one per record; the events an agent sent or published while handling an
  event share that event's sequence and add ``|<effect number>`` (01, 02, ...), so they sort right
  after it (older, in newest-first order) without a counter in the entity state.

Both are inverted (subtracted from a maximum, zero-padded) so that ascending row keys, the only
order Azure Tables returns, are newest first. A batch the host executes again (after a crash,
before it committed) starts from the same state, so it produces the same keys and rewrites the
same rows instead of adding copies.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol, get_args

from pydantic import BaseModel

from aos.domain.models import format_timestamp

__all__ = [
    "HISTORY_KINDS",
    "HISTORY_PREFIX",
    "HistoryArchive",
    "HistoryKind",
    "HistoryPage",
    "HistoryQuery",
    "HistoryRecord",
    "HistoryWriter",
    "InMemoryHistoryArchive",
    "history_row_key",
]


HistoryKind = Literal[
    "event",
    "decision",
    "failure",
    "send",
    "publish",
    "reminder_scheduled",
    "reminder_cancelled",
    "reminder_fired",
    "turn_requested",
    "model_step",
    "tool_call",
    "turn",
]


"""``event``: an applied event (with what its handler returned); ``decision``: a decision;
``failure``: an event whose handler raised (with the error), not applied; ``send`` and
``publish``: an event the agent emitted (``payload``) while handling ``event_id``;
``reminder_scheduled``, ``reminder_cancelled``: a reminder (``payload``) set or cancelled while
handling ``event_id`` (or over the API: then ``event_id`` is the reminder's version);
``reminder_fired``: a reminder that fired the event ``event_id``; ``turn_requested``: a turn
(``payload``: its id, source and prompt) asked for while handling ``event_id``; ``model_step``:
one model reply of a turn (text, tool calls, usage, latency, model); ``tool_call``: one tool call
of a turn with its arguments and result or error; ``turn``: a turn's end (status, reply, usage).
For the last three ``event_id`` is the turn's step key (``<turn_id>:<step>[:<call>]``)."""

HISTORY_KINDS: tuple[HistoryKind, ...] = get_args(HistoryKind)


HISTORY_PREFIX = "history|"


_MAX_MICROS = 10**17 - 1  # far beyond year 9999 in microseconds since 1970


_MAX_SEQUENCE = 10**15 - 1


def history_row_key(generation: str, sequence: int) -> str:
    """The row key of record ``sequence`` of the agent generation created at ``generation``."""
    created = datetime.fromisoformat(generation.replace("Z", "+00:00"))
    micros = int(created.timestamp()) * 1_000_000 + created.microsecond
    return f"{HISTORY_PREFIX}{_MAX_MICROS - micros:017d}|{_MAX_SEQUENCE - sequence:015d}"


@dataclass(slots=True)
class HistoryRecord:
    """One archived event or decision (treat it as immutable; not frozen because a frozen
    dataclass costs a microsecond more to build, and one is built per event in the entity).

    ``payload`` is the whole event (with ``received_at``) or the whole decision. It may be a
    pydantic model while the record is in flight (serialising it is left to the writer, after the
    entity's batch) and is always a dict once read back. ``result`` is what an event's handler
    returned; ``error`` (``type``, ``message``) why a ``failure`` record's handler raised.
    """

    agent_id: str
    generation: str
    sequence: int
    kind: HistoryKind
    event_id: str
    type: str
    recorded_at: str
    payload: dict[str, Any] | BaseModel
    result: Any = None
    error: dict[str, str] | None = None
    effect: int = 0
    """For ``send`` and ``publish`` records: which of its event's effects (1, 2, ...)."""
    confirms_receipt: bool = False
    """An event applied by ``handle_events``: its delivery left the receipt claimed, and archiving
    this record marks it ``signalled`` in the same write (``aos.ports.receipts``). Not stored."""

    @property
    def row_key(self) -> str:
        key = history_row_key(self.generation, self.sequence)
        return f"{key}|{self.effect:02d}" if self.effect else key

    def payload_dict(self) -> dict[str, Any]:
        if isinstance(self.payload, BaseModel):
            return self.payload.model_dump(mode="json")
        return self.payload


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Which records to read: newest first, at most ``limit``, after the ``continuation`` row key
    of a previous page, optionally only one ``kind``, some ``types`` and a time range
    (``since`` inclusive, ``until`` exclusive; fixed-width UTC timestamps)."""

    limit: int = 50
    continuation: str | None = None
    kind: HistoryKind | None = None
    types: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None

    def matches(self, record: HistoryRecord) -> bool:
        return (
            (self.kind is None or record.kind == self.kind)
            and (not self.types or record.type in self.types)
            and (self.since is None or record.recorded_at >= self.since)
            and (self.until is None or record.recorded_at < self.until)
        )


@dataclass(frozen=True, slots=True)
class HistoryPage:
    records: list[HistoryRecord]
    continuation: str | None = None
    """The row key to continue after, or ``None`` on the last page."""


class HistoryWriter(Protocol):
    """Write a batch's records synchronously, from the entity function's worker thread: what it
    uses when no event loop runs to write on (``AppRuntime.complete_batch``), and what tests and
    the in-memory archive provide. Writing a row that exists replaces it."""

    def write(self, records: Sequence[HistoryRecord]) -> None: ...


class HistoryArchive(ABC):
    """Port for reading and housekeeping the archive. Methods raise AOS errors, never SDK ones."""

    @abstractmethod
    async def append(self, *, records: Sequence[HistoryRecord]) -> None:
        """Write records (upserts: repeating a write is harmless)."""

    @abstractmethod
    async def page(self, *, agent_id: str, query: HistoryQuery) -> HistoryPage: ...

    @abstractmethod
    async def has_history(self, *, agent_id: str) -> bool: ...

    @abstractmethod
    async def purge_agent(self, *, agent_id: str) -> int:
        """Delete every record of one agent; returns how many."""

    @abstractmethod
    async def purge(self, *, older_than: datetime, limit: int) -> int:
        """Delete at most ``limit`` records recorded before ``older_than``; returns how many."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class InMemoryHistoryArchive(HistoryArchive):
    """A dict of rows: for agents used directly from Python, and for unit tests. It is also a
    ``HistoryWriter``."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, HistoryRecord]] = {}

    def write(self, records: Sequence[HistoryRecord]) -> None:
        for record in records:
            stored = replace(record, payload=copy.deepcopy(record.payload_dict()))
            self._rows.setdefault(record.agent_id, {})[record.row_key] = stored

    async def append(self, *, records: Sequence[HistoryRecord]) -> None:
        self.write(records)

    async def page(self, *, agent_id: str, query: HistoryQuery) -> HistoryPage:
        rows = self._rows.get(agent_id, {})
        keys = sorted(k for k in rows if query.continuation is None or k > query.continuation)
        found: list[HistoryRecord] = []
        for key in keys:
            if query.matches(rows[key]):
                if len(found) == query.limit:
                    return HistoryPage(found, continuation=found[-1].row_key)
                found.append(rows[key])
        return HistoryPage(found)

    async def has_history(self, *, agent_id: str) -> bool:
        return bool(self._rows.get(agent_id))

    async def purge_agent(self, *, agent_id: str) -> int:
        return len(self._rows.pop(agent_id, {}))

    async def purge(self, *, older_than: datetime, limit: int) -> int:
        cutoff = format_timestamp(older_than)
        deleted = 0
        for rows in self._rows.values():
            for key in [k for k, r in rows.items() if r.recorded_at < cutoff]:
                if deleted == limit:
                    return deleted
                del rows[key]
                deleted += 1
        return deleted

    def count(self, agent_id: str) -> int:
        return len(self._rows.get(agent_id, {}))
