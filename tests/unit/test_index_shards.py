"""The agents index's hash shards spread realistic ids evenly (no Azurite needed).

At 100,000 agents and 16 shards a partition holds ~6,250 agent rows. Against Azure Tables'
documented targets (about 2,000 entities/s per partition, 20,000/s per account) that means: point
look-ups hit a partition in proportion to its share, 1/16 of them; listing a page of 200 reads at
most 201 rows from each of the 16 partitions; and reading the 100,000 subscribers of one type
reads ~6,250 rows from each of 16 partitions, 8 at a time: up to ~16,000 entities/s (under the
account's 20,000), about 6 s, where one partition would cap it at 2,000/s, 50 s."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter

from aos.adapters.azure.index_layout import (
    SHARDS,
    agent_partition,
    key,
    shard_of,
    subscription_partition,
    subscription_shards,
)
from aos.domain.models import AGENT_ID_PATTERN, EVENT_TYPE_PATTERN

AGENTS = 100_000


def realistic_ids() -> list[str]:
    """Sequential names, uuid4 hex and tenant-style names ("/" is not allowed in agent ids, so
    "shop-17/eu" is written "shop-17.eu"), a third each."""
    ids = []
    for i in range(AGENTS):
        if i % 3 == 0:
            ids.append(f"agent-{i:06d}")
        elif i % 3 == 1:
            ids.append(uuid.uuid4().hex)
        else:
            ids.append(f"shop-{i // 3}.{('eu', 'us', 'apac')[i % 3]}")
    return ids


def test_100000_ids_spread_evenly_over_the_shards() -> None:
    ids = realistic_ids()
    assert all(re.fullmatch(AGENT_ID_PATTERN, i) for i in ids[:300])
    load = Counter(shard_of(i) for i in ids)
    mean = AGENTS / SHARDS
    assert set(load) == set(range(SHARDS))
    assert max(load.values()) <= 1.3 * mean, load
    # each shape on its own is spread too (sequential names must not cluster)
    for shape in range(3):
        per_shape = Counter(shard_of(i) for i in ids[shape::3])
        assert max(per_shape.values()) <= 1.3 * len(ids[shape::3]) / SHARDS, per_shape


def test_shards_are_stable_across_processes() -> None:
    """sha256, not the salted ``hash()``: a known id lands where it always did."""
    assert shard_of("agent-000001") == shard_of("agent-000001")
    assert [shard_of(f"a{i}") for i in range(5)] == [
        int.from_bytes(hashlib.sha256(f"a{i}".encode()).digest()[:8], "big") % 16 for i in range(5)
    ]


def test_keys_escape_what_table_keys_forbid() -> None:
    assert key("orders/created") == "orders%2Fcreated"  # as the legacy layout stored it
    assert key("a\\b#c?d%e|f\x00\x7f") == "a%5Cb%23c%3Fd%25e%7Cf%00%7F"
    assert key("agent-000001") == "agent-000001"  # valid agent ids sort as themselves
    assert re.fullmatch(EVENT_TYPE_PATTERN, "orders/created")


def test_a_types_partitions_lie_between_its_bounds_and_no_others_do() -> None:
    first, last = subscription_shards("tick")
    mine = [subscription_partition("tick", s) for s in range(SHARDS)]
    assert all(first <= p <= last for p in mine)
    others = ["tick.x", "tickz", "tic", "tick:1", "tick/1", "*", "ticj", "ticl"]
    for other in others:
        for s in range(SHARDS):
            assert not first <= subscription_partition(other, s) <= last, other
    assert agent_partition(3) == "a|03"
