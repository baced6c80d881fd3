"""The agents index: which agents are registered, with what spec, and who subscribes to what.

Listing agents and finding the subscribers of an event type must not scan the Durable task hub, so
the index keeps a copy of each agent's spec. It is written *before* the entity on register and
removed *after* it on deregister, with a status that says which step an agent is in:

    registering ──configure applied──► active ──DELETE──► deregistering ──entity gone──► (row removed)

so a crash between the two writes leaves a row that says what is unfinished, and repeating the
request finishes it; an agent can never be reachable without being listed.
"""

from __future__ import annotations

import asyncio
import base64
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from aos.domain.models import AGENT_ID_PATTERN, AgentSpec, format_timestamp, full_match, utc_now
from aos.errors import FieldError, InvalidInputError

__all__ = [
    "AgentIndex",
    "IndexEntry",
    "IndexStatus",
    "Page",
    "Recipient",
    "decode_position",
    "decode_token",
    "encode_token",
    "invalid_token",
]


T = TypeVar("T")


class IndexStatus(StrEnum):
    REGISTERING = "registering"
    ACTIVE = "active"
    DEREGISTERING = "deregistering"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    spec: AgentSpec
    status: IndexStatus = IndexStatus.REGISTERING
    registered_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    etag: str | None = None

    @property
    def agent_id(self) -> str:
        return self.spec.agent_id

    @property
    def generation(self) -> str:
        """Which registration this is: an agent deregistered and registered again under the same
        id is a new agent (its delivery receipts start afresh)."""
        return format_timestamp(self.registered_at)

    def subscribes_to(self, event_type: str) -> bool:
        subscriptions = self.spec.subscriptions
        return event_type in subscriptions or "*" in subscriptions

    def with_spec(self, spec: AgentSpec) -> IndexEntry:
        return replace(self, spec=spec, updated_at=utc_now())

    def with_status(self, status: IndexStatus) -> IndexEntry:
        return replace(self, status=status, updated_at=utc_now())


@dataclass(frozen=True, slots=True)
class Recipient:
    """A broadcast's recipient as its delivery needs it: which agent, which registration of it
    (its delivery receipts are per registration), and -- only when that registration may not be
    finished (status ``registering``) -- the full entry, which delivery finishes first."""

    agent_id: str
    generation: str
    unfinished: IndexEntry | None = None

    @staticmethod
    def of(entry: IndexEntry) -> Recipient:
        unfinished = entry if entry.status is IndexStatus.REGISTERING else None
        return Recipient(entry.agent_id, entry.generation, unfinished)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    value: list[T]
    continuation: str | None = None


def encode_token(token: Any) -> str:
    """An opaque continuation token (base64url of JSON) for ``nextLink``."""
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


def decode_token(token: str) -> Any:
    """The JSON a continuation token carries; ``InvalidInputError`` (naming the ``continuation``
    query parameter) for anything that is not base64url of JSON, including JSON nested too deep
    for the parser. Callers check the shape they expect with ``invalid_token``."""
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, RecursionError) as exc:
        raise invalid_token("not base64url of JSON") from exc


def decode_position(token: str) -> str:
    """The last agent id a page of the listing returned, from its continuation token: a valid
    agent id (which bounds its length and characters), else ``InvalidInputError`` (a forged
    token is the caller's 400, in every adapter)."""
    position = decode_token(token)
    if not isinstance(position, str) or not full_match(AGENT_ID_PATTERN, position):
        raise invalid_token("not a position in the agents index")
    return position


def invalid_token(reason: str) -> InvalidInputError:
    return InvalidInputError(
        "The continuation token is not valid; use the nextLink of a previous page",
        [FieldError(("query", "continuation"), reason, "value_error")],
    )


class AgentIndex(ABC):
    """Port for the agents index. Methods raise AOS errors, never SDK ones."""

    @abstractmethod
    async def get(self, *, agent_id: str) -> IndexEntry | None: ...

    @abstractmethod
    async def create(self, *, entry: IndexEntry) -> IndexEntry:
        """Insert; ``AgentExistsError`` if the agent is already indexed."""

    @abstractmethod
    async def replace(self, *, entry: IndexEntry, previous: IndexEntry) -> IndexEntry:
        """Replace ``previous`` (matched by ETag: ``ConflictError`` if it changed meanwhile),
        moving subscription rows along with the spec."""

    @abstractmethod
    async def delete(self, *, entry: IndexEntry) -> None: ...

    @abstractmethod
    async def page(self, *, limit: int, continuation: str | None = None) -> Page[IndexEntry]: ...

    @abstractmethod
    async def subscribers(self, *, event_type: str) -> list[str]:
        """Ids of agents subscribed to ``event_type`` or to every type (``*``)."""

    async def recipients(self, *, event_type: str, agent_ids: Sequence[str]) -> list[Recipient]:
        """Those of ``agent_ids`` that are still registered (not deregistering) and subscribed
        to ``event_type`` or to every type, in the order given: a broadcast's cheap check that
        its named recipients are still there. This default reads each entry, 16 at a time;
        adapters that can read many at once override it."""
        gate = asyncio.Semaphore(16)

        async def read(agent_id: str) -> IndexEntry | None:
            async with gate:
                return await self.get(agent_id=agent_id)

        entries = await asyncio.gather(*(read(a) for a in dict.fromkeys(agent_ids)))
        return [
            Recipient.of(entry)
            for entry in entries
            if entry is not None
            and entry.status is not IndexStatus.DEREGISTERING
            and entry.subscribes_to(event_type)
        ]

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the index cannot be reached (for health checks)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
