"""The events queue's envelope: broadcasts name their recipients and stay under 64 KB."""

from __future__ import annotations

import json

import pytest

from aos.errors import PayloadTooLargeError
from aos.models import Event
from aos.storage.queues import MAX_MESSAGE_BYTES, QueueMessage, broadcast_messages


def test_a_broadcast_to_a_few_agents_is_one_message() -> None:
    (text,) = broadcast_messages(Event(event_id="e1", type="t"), ["a1", "a2"])
    message = QueueMessage.model_validate_json(text)
    assert (message.target, message.recipients) == ("subscribers", ["a1", "a2"])


def test_many_recipients_are_split_under_the_queue_limit() -> None:
    event = Event(event_id="e1", type="t", data={"blob": "x" * 40_000})
    recipients = [f"agent-{i:05d}-" + "x" * 40 for i in range(2_000)]
    texts = broadcast_messages(event, recipients)
    assert len(texts) > 1
    assert all(len(t.encode()) <= MAX_MESSAGE_BYTES for t in texts)
    carried = [r for t in texts for r in json.loads(t)["recipients"]]
    assert carried == recipients  # each exactly once, in order
    assert all(json.loads(t)["event"]["data"] == event.data for t in texts)


def test_no_subscribers_means_no_message_but_the_size_is_still_checked() -> None:
    assert broadcast_messages(Event(event_id="e1", type="t"), []) == []
    with pytest.raises(PayloadTooLargeError):
        broadcast_messages(Event(event_id="e1", type="t", data="x" * MAX_MESSAGE_BYTES), [])


def test_recipients_belong_to_broadcasts_only() -> None:
    event = Event(event_id="e1", type="t", agent_id="a1")
    with pytest.raises(ValueError, match="broadcasts"):
        QueueMessage(target="agent", event=event, recipients=["a1"])
