"""Exactly once on at-least-once queues: delivery receipts catch duplicates however late they come."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from azure.functions.queue import QueueMessage as FuncQueueMessage
from harness import Aos, running_aos

from aos import Limits
from aos.adapters.azure.durable import DurableEntityClient
from aos.errors import StorageError
from aos.ports.receipts import Claim
from aos.services.batching import DeliveryBatcher
from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.asyncio
WINDOW = 16


@pytest_asyncio.fixture
async def aos(azurite: Azurite, unique_name: UniqueName) -> AsyncIterator[Aos]:
    # A small de-duplication window in the entity, so that "late" means "beyond the window".
    limits = Limits(processed_ids=WINDOW)
    async with running_aos(azurite.connection_string, unique_name, limits=limits) as running:
        yield running


def envelope(agent_id: str, event_id: str) -> str:
    event = {"event_id": event_id, "agent_id": agent_id, "type": "tick"}
    return json.dumps({"version": 1, "target": "agent", "event": event})


async def handled(aos: Aos, agent_id: str) -> int:
    return int((await aos.call("GET", f"agents/{agent_id}")).json["counters"]["events_handled"])


async def test_a_redelivery_long_after_the_window_is_not_applied_again(aos: Aos) -> None:
    await aos.register("a1")
    await aos.deliver(envelope("a1", "first"), message_id="m-first")
    for i in range(WINDOW + 4):  # the entity forgets "first"
        await aos.deliver(envelope("a1", f"later-{i}"))
    # The host died after signalling "first" but before deleting its message: it comes back.
    await aos.deliver(envelope("a1", "first"), message_id="m-first", dequeue_count=2)
    assert await handled(aos, "a1") == WINDOW + 5


async def test_the_same_event_in_another_message_long_after_is_not_applied_again(aos: Aos) -> None:
    await aos.register("a1")
    await aos.deliver(envelope("a1", "order-7"))
    for i in range(WINDOW + 4):
        await aos.deliver(envelope("a1", f"later-{i}"))
    await aos.deliver(envelope("a1", "order-7"))  # a client's retried POST
    assert await handled(aos, "a1") == WINDOW + 5


async def test_a_claim_that_died_before_signalling_is_signalled_on_retry(aos: Aos) -> None:
    await aos.register("a1")
    receipts = aos.runtime.storage().receipts
    # The first attempt claimed the event and died before its signal.
    assert await receipts.claim(agent_id="a1", event_id="e1", message_id="m1") is Claim.NEW
    await aos.deliver(envelope("a1", "e1"), message_id="m1", dequeue_count=2)
    assert await handled(aos, "a1") == 1
    assert await receipts.claim(agent_id="a1", event_id="e1", message_id="m1") is Claim.DONE
    assert await receipts.claim(agent_id="a1", event_id="e1", message_id="m2") is Claim.OTHER


async def test_broadcast_redeliveries_are_caught_per_agent(aos: Aos) -> None:
    await aos.register("s1", subscriptions=["tick"])
    await aos.register("s2", subscriptions=["tick"])
    message = json.dumps(
        {"version": 1, "target": "subscribers", "event": {"event_id": "b1", "type": "tick"}}
    )
    await aos.deliver(message, message_id="mb")
    await aos.register("s3", subscriptions=["tick"])  # subscribed after the first delivery
    await aos.deliver(message, message_id="mb", dequeue_count=2)
    assert [await handled(aos, a) for a in ("s1", "s2", "s3")] == [1, 1, 1]


# ---- retention of the history table ------------------------------------------------------------------
async def test_retention_deletes_only_old_history_rows(aos: Aos) -> None:
    from azure.data.tables.aio import TableClient
    from azure.functions.timer import TimerRequest

    await aos.register("a1")
    await aos.deliver(envelope("a1", "recent"))
    async with TableClient.from_connection_string(
        aos.connection_string, aos.settings.history_table
    ) as table:
        old = {
            "status": "signalled",
            "message_id": "m",
            "claimed_at": "2001-01-01T00:00:00.000000Z",
        }
        for i in range(150):  # more than one transaction's worth
            await table.upsert_entity({"PartitionKey": "a1", "RowKey": f"receipt|old-{i}", **old})
        await aos.host.invoke("purge_history", timer=TimerRequest(past_due=False))
        keys = [row["RowKey"] async for row in table.query_entities("PartitionKey eq 'a1'")]
    assert [k for k in keys if k.startswith("receipt|")] == ["receipt|recent"]


async def test_deregister_with_purge_deletes_the_agents_history(aos: Aos) -> None:
    receipts = aos.runtime.storage().receipts
    for agent_id in ("a1", "a2"):
        await aos.register(agent_id)
        await aos.deliver(envelope(agent_id, "e1"))
    assert (await aos.call("DELETE", "agents/a1", params={"purge": "true"})).status == 202
    assert (await aos.call("DELETE", "agents/a2")).status == 204
    assert await aos.run_maintenance() == 1  # the purge runs in the background
    # a1's receipts are gone (a new message with e1 is new again); a2's are kept until retention
    assert await receipts.claim(agent_id="a1", event_id="e1", message_id="x") is Claim.NEW
    assert await receipts.claim(agent_id="a2", event_id="e1", message_id="x") is Claim.OTHER
    assert (await aos.call("DELETE", "agents/a2", params={"purge": "maybe"})).status == 400


# ---- deliveries to one agent that arrive together (aos.services.batching) ----------------------
async def test_concurrent_deliveries_to_one_agent_share_signals_and_apply_once(aos: Aos) -> None:
    """Forty deliveries at once share signals and apply once each; a client's retried POST of one
    of them, in a message of its own, is caught by the receipts however late it comes. (A retry
    racing the first delivery, while that one's receipt is not yet confirmed, takes the receipt
    over and is dropped by the entity's window of recent ids: that needs the window, 16 here, to
    hold the events in flight, so it is tested with fewer, below.)"""
    await aos.register("a1")
    batcher = aos.runtime.batcher()
    sent_before = batcher.operations_sent
    messages = [(envelope("a1", f"burst-{i}"), f"m-{i}") for i in range(40)]

    async def deliver(body: str, message_id: str) -> None:
        message = FuncQueueMessage(id=message_id, body=body.encode(), dequeue_count=1)  # type: ignore[no-untyped-call]
        await aos.host.invoke("deliver_events", msg=message)

    await asyncio.gather(*(deliver(body, message_id) for body, message_id in messages))
    await aos.host.wait_idle()
    assert await handled(aos, "a1") == 40
    assert batcher.operations_sent - sent_before < 40  # some signals carried several events
    await deliver(envelope("a1", "burst-3"), "m-repeat")  # a client's retried POST
    assert await handled(aos, "a1") == 40
    racing = [(envelope("a1", f"race-{i}"), f"r-{i}") for i in range(WINDOW // 2)]
    racing.append((envelope("a1", "race-1"), "r-repeat"))  # retried while the first is in flight
    await asyncio.gather(*(deliver(body, message_id) for body, message_id in racing))
    await aos.host.wait_idle()
    assert await handled(aos, "a1") == 40 + WINDOW // 2
    # and every message delivered again later is recognised, however late
    for i in range(WINDOW + 4):
        await aos.deliver(envelope("a1", f"later-{i}"))
    await aos.deliver(messages[0][0], message_id="m-0", dequeue_count=2)
    assert await handled(aos, "a1") == 40 + WINDOW // 2 + WINDOW + 4


def broadcast(event_id: str, recipients: list[str]) -> str:
    event = {"event_id": event_id, "type": "tick"}
    message = {"version": 1, "target": "subscribers", "event": event, "recipients": recipients}
    return json.dumps(message)


async def test_a_broadcast_signal_that_failed_is_retried_for_its_recipient_alone(
    aos: Aos, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = [f"s{i}" for i in range(7)]  # more than a handful: receipts go in transactions
    for agent_id in agents:
        await aos.register(agent_id, subscriptions=["tick"])
    failing = {"s3"}
    real = DurableEntityClient.signal

    async def flaky(
        self: DurableEntityClient, *, agent_id: str, operation: str, value: Any
    ) -> None:
        if agent_id in failing:
            failing.discard(agent_id)
            raise StorageError("the Durable extension is unavailable")
        await real(self, agent_id=agent_id, operation=operation, value=value)

    monkeypatch.setattr(DurableEntityClient, "signal", flaky)
    with pytest.raises(StorageError):
        await aos.deliver(broadcast("b1", agents), message_id="mb")
    await aos.host.wait_idle()
    assert [await handled(aos, a) for a in agents] == [1, 1, 1, 0, 1, 1, 1]
    await aos.deliver(broadcast("b1", agents), message_id="mb", dequeue_count=2)
    assert [await handled(aos, a) for a in agents] == [1] * 7
    for i in range(WINDOW + 4):  # s0 forgets b1; its receipt does not
        await aos.deliver(envelope("s0", f"later-{i}"))
    await aos.deliver(broadcast("b1", agents), message_id="mb", dequeue_count=3)
    await aos.deliver(broadcast("b1", agents), message_id="another")  # published again
    assert [await handled(aos, a) for a in agents] == [1 + WINDOW + 4] + [1] * 6


async def test_a_first_broadcast_records_its_recipients_after_signalling_them(aos: Aos) -> None:
    """No delivery had claimed the event: its recipients are signalled without claims, then
    recorded as claimed by the message and signalled, so that the receipts answer afterwards as
    if each had been claimed and marked."""
    agents = [f"f{i:03d}" for i in range(120)]  # more than one transaction's worth
    for agent_id in agents:
        await aos.register(agent_id, subscriptions=["tick"])
    receipts = aos.runtime.storage().receipts
    assert await receipts.broadcast_unclaimed(event_id="b9")
    await aos.deliver(broadcast("b9", agents), message_id="m9")
    await aos.host.wait_idle()
    assert not await receipts.broadcast_unclaimed(event_id="b9")
    found = await aos.runtime.storage().index.recipients(event_type="tick", agent_ids=agents)
    who = [(recipient.agent_id, recipient.generation) for recipient in found]
    assert len(who) == len(agents)
    claims = await receipts.claim_broadcast(event_id="b9", message_id="m9", recipients=who)
    assert claims == [Claim.DONE] * len(agents)
    claims = await receipts.claim_broadcast(event_id="b9", message_id="m10", recipients=who)
    assert claims == [Claim.OTHER] * len(agents)  # the same event in another message
    await aos.deliver(broadcast("b9", agents), message_id="m9", dequeue_count=2)
    await aos.deliver(broadcast("b9", agents), message_id="m10")
    assert {await handled(aos, agent_id) for agent_id in agents} == {1}


async def test_broadcast_receipts_follow_the_rules_a_transaction_at_a_time(aos: Aos) -> None:
    """``claim_broadcast`` over more than one transaction's worth of recipients answers as
    ``claim`` does for each (``aos.ports.receipts``)."""
    receipts = aos.runtime.storage().receipts
    recipients = [(f"r{i:03d}", "g1") for i in range(130)]
    ids = [agent_id for agent_id, _ in recipients]

    async def claims(message_id: str, who: list[tuple[str, str]] = recipients) -> list[Claim]:
        return await receipts.claim_broadcast(event_id="b7", message_id=message_id, recipients=who)

    assert await claims("m1") == [Claim.NEW] * 130
    assert await claims("m1") == [Claim.RETRY] * 130  # claimed, never confirmed: signal again
    await receipts.mark_broadcast_signalled(event_id="b7", agent_ids=ids[:120])
    assert await claims("m1") == [Claim.DONE] * 120 + [Claim.RETRY] * 10
    await receipts.mark_broadcast_signalled(event_id="b7", agent_ids=ids[120:])
    assert await claims("m2") == [Claim.OTHER] * 130  # the same event in another message
    reborn = [(agent_id, "g2" if agent_id == "r005" else g) for agent_id, g in recipients[:10]]
    assert await claims("m2", reborn) == [Claim.OTHER] * 5 + [Claim.RETRY] + [Claim.OTHER] * 4
    fresh = [("r999", "g1"), *recipients[6:12]]  # a new one among claimed ones: one by one
    assert await claims("m1", fresh) == [Claim.NEW] + [Claim.DONE] * 6
    # the direct path's receipts are elsewhere: the same (agent, event) is new there
    assert await receipts.claim(agent_id="r000", event_id="b7", message_id="m1") is Claim.NEW


async def test_a_delivery_that_died_after_its_signal_is_not_applied_again_much_later(
    aos: Aos, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process died once the batch's signal was stored, before anything else (its messages
    stay on the queue): the entity confirmed each receipt in the write that archived the event,
    so the messages, back long after the entity's window has moved on, signal nothing."""
    await aos.register("a1")
    real = DeliveryBatcher._claim_and_signal

    async def dies_after_signalling(self: DeliveryBatcher, agent_id: str, batch: Any) -> Any:
        await real(self, agent_id, batch)
        raise StorageError("the host was killed")

    monkeypatch.setattr(DeliveryBatcher, "_claim_and_signal", dies_after_signalling)
    messages = [(envelope("a1", f"k{i}"), f"mk{i}") for i in range(3)]

    async def deliver(body: str, message_id: str, dequeue_count: int) -> None:
        message = FuncQueueMessage(id=message_id, body=body.encode(), dequeue_count=dequeue_count)  # type: ignore[no-untyped-call]
        await aos.host.invoke("deliver_events", msg=message)

    results = await asyncio.gather(
        *(deliver(body, message_id, 1) for body, message_id in messages), return_exceptions=True
    )
    assert all(isinstance(r, StorageError) for r in results)
    await aos.host.wait_idle()
    assert await handled(aos, "a1") == 3  # the signals were stored: applied
    monkeypatch.undo()
    for i in range(WINDOW + 4):  # the entity forgets k0..k2
        await aos.deliver(envelope("a1", f"later-{i}"))
    for body, message_id in messages:  # the lease ends: the messages come back
        await deliver(body, message_id, 2)
    await aos.host.wait_idle()
    assert await handled(aos, "a1") == 3 + WINDOW + 4
