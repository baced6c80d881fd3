"""The stored document: the hot path writes exactly what the typed model would, and stays small."""

from __future__ import annotations

import base64
import hashlib
import json

from aos import Event, GenericPurposeDrivenAgent, Limits
from aos.domain.document import (
    ContextDocument,
    id_digest,
    summarize_event,
    worst_case_state_bytes,
)
from aos.domain.models import AgentContext, EventSummary, format_timestamp, utc_now


def test_summarize_event_matches_the_model_dump() -> None:
    event = Event.model_validate(
        {"event_id": "e1", "type": "t", "source": "s", "correlation_id": "c", "data": {"a": [1]}}
    )
    received = format_timestamp(utc_now())
    fast = summarize_event(event, received_at=received, preview_bytes=256)
    typed = EventSummary(
        event_id="e1",
        type="t",
        source="s",
        correlation_id="c",
        created_at=event.created_at,
        received_at=utc_now(),
        data={"a": [1]},
    ).model_dump(mode="json")
    assert list(fast) == list(typed)  # same fields, same order
    assert EventSummary.model_validate(fast).model_dump(mode="json") == fast


def test_fast_path_documents_validate_and_round_trip() -> None:
    agent = GenericPurposeDrivenAgent("a1", purpose="Grow revenue")
    for i in range(30):
        agent.receive({"event_id": f"e{i}", "type": "order.created", "data": {"i": i}})
    agent.decide({"decision_id": "d1", "options": ["grow revenue", "sleep"]})
    raw = json.loads(json.dumps(agent.document.raw))
    context = AgentContext.model_validate(raw)
    assert context.model_dump(mode="json") == raw
    assert ContextDocument.load(raw).has_processed(agent.document.raw["recent_id_digests"][-8:])


def test_default_limits_keep_the_worst_case_state_under_32_kib() -> None:
    limits = Limits()
    assert worst_case_state_bytes(limits) <= 32 * 1024


def test_worst_case_is_a_real_bound() -> None:
    """Fill every window with maximal entries and the user budget to the byte: still under it."""
    limits = Limits()
    agent = GenericPurposeDrivenAgent("a" * 64, purpose="p", limits=limits)
    while True:
        try:
            agent.set_state_value(f"k{len(agent.context.state)}", "v" * 200)
        except Exception:
            break
    big = {"p": "d" * (limits.event_preview_bytes - 9)}
    for i in range(limits.processed_ids):
        agent.receive(
            {
                "event_id": f"{i:0128d}",
                "type": "t" * 64,
                "source": "s" * 64,
                "correlation_id": "c" * 64,
                "data": big,
                "created_at": "2026-01-01T00:00:00Z",
            }
        )
    for i in range(limits.recent_decisions):
        agent.decide({"decision_id": f"{i:0128d}", "options": [big], "context": {}})
    size = agent.document.size_bytes()
    assert size <= worst_case_state_bytes(limits) <= limits.max_state_bytes, size


def test_id_digests_stay_what_stored_states_hold() -> None:
    """The window holds digests written by every earlier version: 48 bits of BLAKE2b personalised
    by the namespace, URL-safe base64. The fast path must give exactly these."""
    for identifier in ("e1", "0" * 128, "évènement-🙂", ""):
        for namespace in ("event", "decision", "turn-step"):
            plain = hashlib.blake2b(identifier.encode(), digest_size=6, person=namespace.encode())
            expected = base64.urlsafe_b64encode(plain.digest()).decode("ascii")
            assert id_digest(identifier, namespace) == expected
    assert id_digest("e1") == "LzjRAUjf"  # pinned: a change here forgets every stored window
