# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""Housekeeping: retention of the history table on a timer, and purges of one agent's rows driven
by messages on the maintenance queue (``<AOS_EVENTS_QUEUE>-maintenance``).

Both delete in batches, save where they are after each batch, and stop at a time budget well
inside the Functions timeout (5 minutes by default on Consumption), so a run never dies half-way
through more than one batch; the next run (timer) or the next message (purge) continues.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import azure.functions as func

from aos.domain.models import utc_now
from aos.functions.container import AppRuntime

__all__ = [
    "PURGE_BUDGET_SECONDS",
    "RETENTION_BUDGET_SECONDS",
    "RETENTION_PASS_SECONDS",
    "maintenance_blueprint",
]

logger = logging.getLogger("aos.maintenance")
RETENTION_BUDGET_SECONDS = 240.0
"""How long one retention run deletes: inside the 5-minute default timeout and the 5-minute
schedule, so runs never overlap. Measured on Azurite (bench/retention.py, docs/PERFORMANCE.md):
400-1,000 rows/s, slower as the table grows (Azurite finds each row it deletes by scanning)."""
RETENTION_PASS_SECONDS = 55 * 60.0
"""A new pass over the partitions starts at most this often: hourly, on the 5-minute schedule.
The runs in between continue an unfinished pass (up to 12 x 240 s of deleting an hour: 1.1 to
2.9 million rows at the rates above, against the 720,000 that 100 events/s add, a record and a
receipt each) or only read the cursor, so an idle table is not walked every 5 minutes."""
PURGE_BUDGET_SECONDS = 60.0
"""How long one purge message deletes before it queues the next one and returns."""


def maintenance_blueprint(runtime: AppRuntime) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name(name="purge_history")
    @bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", use_monitor=True)
    async def purge_history(timer: func.TimerRequest) -> None:
        """Every 5 minutes: delete history records and delivery receipts older than
        AOS_HISTORY_RETENTION_DAYS, from where the last run stopped, for at most
        RETENTION_BUDGET_SECONDS (a new pass at most hourly)."""
        days = runtime.settings.history_retention_days
        cutoff = utc_now() - timedelta(days=days)
        done = await runtime.storage().retention.run(
            older_than=cutoff,
            budget_seconds=RETENTION_BUDGET_SECONDS,
            pass_interval_seconds=RETENTION_PASS_SECONDS,
        )
        logger.info(
            "retention (%d days): deleted %d history records and %d delivery receipts in %d "
            "partitions; %s",
            days,
            done.history_deleted,
            done.receipts_deleted,
            done.partitions,
            "pass finished" if done.pass_finished else "the next run continues",
        )

    @bp.function_name(name="run_maintenance")
    @bp.queue_trigger(
        arg_name="msg",
        queue_name="%AOS_EVENTS_QUEUE%-maintenance",
        connection="AzureWebJobsStorage",
    )
    async def run_maintenance(msg: func.QueueMessage) -> None:
        """Run (part of) a purge; queue the next message if it is not done. A message that is
        not a purge is logged and dropped: nothing else is sent to this queue."""
        try:
            agent_id = str(json.loads(msg.get_body())["purge"]["agent_id"])
        except (ValueError, KeyError, TypeError):
            logger.warning("maintenance queue: ignoring a message that is not a purge")
            return
        purges = runtime.storage().purges
        status = await purges.run(agent_id=agent_id, budget_seconds=PURGE_BUDGET_SECONDS)
        if status is not None and not status.done:
            await purges.resume(agent_id=agent_id)

    return bp
