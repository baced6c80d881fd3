# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""The queue-triggered functions: delivering events to agents (logic in ``aos.services.delivery``), and
recording what the host gave up on (``aos.services.letters``).

The queue name is the ``AOS_EVENTS_QUEUE`` app setting (``%...%`` binding expression), read by the
host; batch size, visibility timeout and ``maxDequeueCount`` (then ``<queue>-poison``) are in
host.json. ``record_poison`` listens on that poison queue: it records each message in the letters
table, where ``GET /api/poison`` lists it and ``POST /api/poison/{id}/replay`` sends it back, and
the host then deletes it from the poison queue.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from aos.functions.container import AppRuntime

__all__ = ["queue_blueprint"]


def queue_blueprint(runtime: AppRuntime) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name(name="deliver_events")
    @bp.queue_trigger(
        arg_name="msg", queue_name="%AOS_EVENTS_QUEUE%", connection="AzureWebJobsStorage"
    )
    @bp.durable_client_input(client_name="client")
    async def deliver_events(msg: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
        """Validate a queued event and signal ``handle_event`` on each addressed agent."""
        from aos.adapters.azure.durable import (
            DurableEntityClient,
            DurableReminderScheduler,
            DurableTurnScheduler,
        )
        from aos.services.delivery import EventDelivery

        storage = runtime.storage()
        delivery = EventDelivery(
            index=storage.index,
            queue=storage.queue,
            entities=DurableEntityClient(client),
            receipts=storage.receipts,
            letters=storage.letters,
            max_hops=runtime.settings.max_hops,
            reminders=DurableReminderScheduler(client),
            turns=DurableTurnScheduler(client),
            batcher=runtime.batcher(),
        )
        await delivery.deliver(
            body=msg.get_body(), message_id=msg.id, dequeue_count=msg.dequeue_count
        )

    @bp.function_name(name="record_poison")
    @bp.queue_trigger(
        arg_name="msg", queue_name="%AOS_EVENTS_QUEUE%-poison", connection="AzureWebJobsStorage"
    )
    async def record_poison(msg: func.QueueMessage) -> None:
        """Record a message the host moved to the poison queue, so the API can list and replay it."""
        await runtime.dead_letters().record_poison(
            body=msg.get_body(),
            from_queue=runtime.settings.events_queue,
            message_id=msg.id,
            dequeue_count=msg.dequeue_count,
        )

    return bp
