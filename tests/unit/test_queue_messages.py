"""The events queue's envelope: broadcasts name their recipients and stay under 64 KB."""

from __future__ import annotations

import json

import pytest

from aos.domain.messages import MAX_MESSAGE_BYTES, QueueMessage, broadcast_messages, encode_message
from aos.domain.models import Event
from aos.errors import PayloadTooLargeError


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


def test_broadcast_messages_are_split_by_bytes_not_characters() -> None:
    event = Event(event_id="e1", type="t", data={"text": "é" * 25_000})  # 50 KB as UTF-8
    recipients = [f"agent-{i:05d}-" + "x" * 40 for i in range(400)]
    texts = broadcast_messages(event, recipients)
    assert len(texts) > 1
    assert all(len(t.encode()) <= MAX_MESSAGE_BYTES for t in texts)
    assert [r for t in texts for r in json.loads(t)["recipients"]] == recipients


def test_an_event_is_refused_when_its_signal_would_be_too_large() -> None:
    emoji = Event(event_id="e1", type="t", agent_id="a1", data="😀" * 15_000)  # 60 KB queued
    with pytest.raises(PayloadTooLargeError, match="signal"):
        encode_message(QueueMessage(target="agent", event=emoji))
    with pytest.raises(PayloadTooLargeError, match="signal"):
        broadcast_messages(emoji.model_copy(update={"agent_id": None}), ["a1"])
