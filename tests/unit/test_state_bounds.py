"""The entity state stays within its cap in stored bytes, whatever the text: characters outside
ASCII are escaped in the state (an emoji is 12 bytes), so bounds count escaped bytes."""

from __future__ import annotations

import json

import pytest

from aos import Event, GenericPurposeDrivenAgent, InvalidInputError, Limits
from aos.domain.document import truncate_escaped, worst_case_state_bytes


@pytest.mark.parametrize("field", ["source", "correlation_id"])
def test_labels_are_bounded_in_stored_bytes(field: str) -> None:
    Event(type="t", **{field: "x" * 64})
    with pytest.raises(ValueError, match="bytes as stored JSON"):
        Event(type="t", **{field: "😀" * 6})  # 6 characters, 72 bytes in the state


def test_the_rationale_kept_in_the_window_is_bounded_in_bytes() -> None:
    purpose = " ".join(["croissance durable des équipes"] * 40)
    agent = GenericPurposeDrivenAgent("a1", purpose=purpose[:2000])
    decision = agent.decide({"options": [purpose[:1500], "x"]})
    (kept,) = agent.context.recent_decisions
    assert len(json.dumps(kept.rationale)) - 2 <= 300
    assert decision.rationale.startswith(kept.rationale)


def test_a_window_full_of_non_ascii_events_stays_within_the_cap() -> None:
    limits = Limits()
    agent = GenericPurposeDrivenAgent("a1", purpose="p", limits=limits)
    label = "é" * 10  # 60 bytes as stored
    for i in range(2 * limits.recent_events):
        agent.receive(
            {"event_id": f"e{i}", "type": "t", "source": label, "correlation_id": label,
             "data": {"d": "😀" * 20}}
        )  # fmt: skip
    assert agent.document.size_bytes() <= worst_case_state_bytes(limits) <= limits.max_state_bytes


def test_truncate_escaped_counts_escaped_bytes() -> None:
    assert truncate_escaped("abc", 3) == "abc"
    assert truncate_escaped("😀😀", 12) == "😀"
    assert truncate_escaped('a"b', 2) == "a"
    with pytest.raises(InvalidInputError):
        GenericPurposeDrivenAgent("a1", purpose="p").receive(
            {"event_id": "e1", "type": "t", "source": "😀" * 6}
        )
