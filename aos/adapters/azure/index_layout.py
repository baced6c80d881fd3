"""Where ``TableAgentIndex`` keeps its rows: hash shards, so that no partition gets hot.

Azure Tables targets about 2,000 entities/s per partition (20,000/s per account): the service
spreads distinct partition keys over its servers, never one partition. One partition for the whole index (the legacy
layout below) caps every look-up, listing and subscriber read at that figure, however many agents
there are. So the rows are spread over ``SHARDS`` partitions by a stable hash of the agent id
(sha256, never Python's salted ``hash()``, which differs between processes):

    PartitionKey "a|<shard>"               RowKey "<agent id>"   the agent: spec (JSON), status,
                                                                  timestamps; the truth
    PartitionKey "s|<event type>|<shard>"  RowKey "<agent id>"   one row per subscription: an
                                                                  index that may have extras,
                                                                  never misses; with the
                                                                  agent's generation and status
    PartitionKey "m"                       RowKey "layout"       which layout this table holds

``<shard>`` is two digits, ``00`` to ``15``; an agent's subscription rows use its own shard, so a
type with 100,000 subscribers is 16 partitions of ~6,250 rows each. ``SHARDS`` is part of the
stored layout: the marker row records it, and the adapter refuses to run on a table written with
another count (changing it needs a re-sharding migration that does not exist yet).

Legacy layout (before sharding), migrated on first use: PartitionKey ``"agents"``, RowKeys
``"a|<agent id>"`` and ``"s|<event type>|<agent id>"``.

Key characters Table keys forbid (``/ \\ # ?`` and control characters), ``%`` and the ``|``
separator are written as ``%XX``: the identity for valid agent ids and for event types other than
those with ``/`` (stored as ``%2F``, as the legacy layout did), so row keys sort as agent ids do.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from aos.domain.models import AgentSpec, format_timestamp
from aos.ports.index import IndexEntry, IndexStatus

__all__ = [
    "LEGACY_PARTITION",
    "MARKER",
    "SHARDS",
    "agent_partition",
    "agent_row",
    "entry_from_row",
    "key",
    "shard_of",
    "subscription_key",
    "subscription_partition",
    "subscription_row",
    "subscription_shards",
]

SHARDS = 16
"""Hash shards of the index. At 100,000 agents: 6,250 agent rows per partition, and a type every
agent subscribes to is 6,250 subscription rows per partition."""

LEGACY_PARTITION = "agents"
MARKER = ("m", "layout")

_FORBIDDEN = frozenset("/\\#?%|")


def key(text: str) -> str:
    """``text`` as a Table key part: forbidden characters, ``%`` and ``|`` as ``%XX``."""
    return "".join(
        f"%{ord(c):02X}" if c in _FORBIDDEN or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F else c
        for c in text
    )


def shard_of(agent_id: str) -> int:
    """The agent's shard: stable across processes, versions and machines."""
    digest = hashlib.sha256(agent_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % SHARDS


def agent_partition(shard: int) -> str:
    return f"a|{shard:02d}"


def subscription_partition(event_type: str, shard: int) -> str:
    return f"s|{key(event_type)}|{shard:02d}"


def subscription_shards(event_type: str) -> tuple[str, str]:
    """The first and last partition of ``event_type``'s subscriptions (inclusive bounds: the
    shard numbers are fixed-width, so exactly the type's partitions lie between them)."""
    return subscription_partition(event_type, 0), subscription_partition(event_type, SHARDS - 1)


def agent_row(entry: IndexEntry) -> dict[str, Any]:
    return {
        "PartitionKey": agent_partition(shard_of(entry.agent_id)),
        "RowKey": key(entry.agent_id),
        "agent_id": entry.agent_id,
        "kind": entry.spec.kind,
        "status": entry.status.value,
        "spec": json.dumps(entry.spec.model_dump(mode="json")),
        "registered_at": format_timestamp(entry.registered_at),
        "updated_at": format_timestamp(entry.updated_at),
    }


def subscription_key(event_type: str, agent_id: str) -> tuple[str, str]:
    """The (PartitionKey, RowKey) of ``agent_id``'s subscription to ``event_type``."""
    return subscription_partition(event_type, shard_of(agent_id)), key(agent_id)


def subscription_row(event_type: str, entry: IndexEntry) -> dict[str, Any]:
    """The subscription row, with the registration it belongs to (``generation``) and the
    agent's status when it was written: what a broadcast's delivery needs of each recipient, so
    that it reads the rows of its recipients a key range at a time instead of one agent row each
    (``TableAgentIndex.recipients``). Every change of status rewrites the rows (``replace``)
    before the agent row; anything but ``active`` sends delivery to the agent row, the truth."""
    partition, row_key = subscription_key(event_type, entry.agent_id)
    return {
        "PartitionKey": partition,
        "RowKey": row_key,
        "agent_id": entry.agent_id,
        "event_type": event_type,
        "generation": entry.generation,
        "status": entry.status.value,
    }


def entry_from_row(row: Any) -> IndexEntry:
    """An entry from an agent row of either layout (the properties are the same)."""
    return IndexEntry(
        spec=AgentSpec.model_validate_json(row["spec"]),
        status=IndexStatus(row["status"]),
        registered_at=datetime.fromisoformat(row["registered_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        etag=row.metadata.get("etag"),
    )
