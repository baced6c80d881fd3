# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""Housekeeping on a timer: retention of the per-agent history table."""

from __future__ import annotations

import logging
from datetime import timedelta

import azure.functions as func

from aos.domain.models import utc_now
from aos.functions.container import AppRuntime

__all__ = ["PURGE_BATCH", "maintenance_blueprint"]

logger = logging.getLogger("aos.maintenance")
PURGE_BATCH = 5000
"""Rows deleted per run at most, so one run stays short; the next run continues."""


def maintenance_blueprint(runtime: AppRuntime) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name(name="purge_history")
    @bp.timer_trigger(arg_name="timer", schedule="0 7 * * * *", use_monitor=True)
    async def purge_history(timer: func.TimerRequest) -> None:
        """Every hour: delete history records and delivery receipts older than
        AOS_HISTORY_RETENTION_DAYS, in bounded batches (the next run continues)."""
        days = runtime.settings.history_retention_days
        cutoff = utc_now() - timedelta(days=days)
        storage = runtime.storage()
        records = await storage.history.purge(older_than=cutoff, limit=PURGE_BATCH)
        receipts = await storage.receipts.purge(older_than=cutoff, limit=PURGE_BATCH)
        logger.info(
            "purged %d history records and %d delivery receipts older than %d days",
            records,
            receipts,
            days,
        )

    return bp
