"""Finishing a registration: the steps the manager and the delivery of events share.

A registration writes the agents index (status ``registering``), signals ``configure`` and, once
the entity shows the spec, marks the index row ``active``. If the entity is slow the caller gets a
202 and the row stays ``registering``; whoever next needs the agent finishes the registration
(``finish_registration``): an event for it, a broadcast to it, or a PATCH. Signals from one client
to one entity are applied in the order they were sent, so an event signalled right after
``configure`` finds the agent configured.
"""

from __future__ import annotations

from typing import Any

from aos.domain.models import AgentSpec
from aos.errors import ConflictError
from aos.ports.entity_client import EntityClient
from aos.ports.index import AgentIndex, IndexEntry, IndexStatus

__all__ = ["activate", "configure_signal", "finish_registration"]


def configure_signal(spec: AgentSpec) -> dict[str, Any]:
    """The ``configure`` input that makes the entity's spec exactly ``spec``."""
    payload = spec.model_dump(mode="json")
    del payload["agent_id"]
    return {**payload, "replace": True}


async def activate(index: AgentIndex, entry: IndexEntry) -> IndexEntry:
    """Mark ``entry`` active. Another process activating the same spec first is not a conflict;
    a spec changed meanwhile is (``ConflictError``)."""
    if entry.status is IndexStatus.ACTIVE:
        return entry
    try:
        return await index.replace(entry=entry.with_status(IndexStatus.ACTIVE), previous=entry)
    except ConflictError:
        current = await index.get(agent_id=entry.agent_id)
        active = current is not None and current.status is IndexStatus.ACTIVE
        if active and current is not None and current.spec == entry.spec:
            return current
        raise


async def finish_registration(
    index: AgentIndex, entities: EntityClient, entry: IndexEntry
) -> IndexEntry:
    """Make a ``registering`` agent usable: configure its entity with the indexed spec unless it
    has it already, then mark the row active (a concurrent change of the spec wins; the next
    caller finishes that one)."""
    state = await entities.read(agent_id=entry.agent_id)
    expected = entry.spec.model_dump(mode="json")
    if state is None or state.get("spec") != expected:
        await entities.signal(
            agent_id=entry.agent_id, operation="configure", value=configure_signal(entry.spec)
        )
    try:
        return await activate(index, entry)
    except ConflictError:
        return entry
