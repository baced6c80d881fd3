# mypy: disable-error-code="untyped-decorator,no-untyped-call,misc"
"""The orchestration ``aos_reminder``: one instance per reminder version, waiting for its time.

It waits on a durable timer (any horizon: the Durable extension splits long timers) or a
``cancel`` event, then calls the agent's ``fire_reminder`` operation, which decides, from the
agent's state, whether this version is still active and due (``aos.domain.reminders``). A
recurring reminder's answer names its next due time, and the orchestration continues as new to
wait for it, so its history stays one cycle long.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from aos.agents.entity import ENTITY_NAME
from aos.domain.reminders import REMINDER_ORCHESTRATOR

__all__ = ["reminder_blueprint"]


def reminder_blueprint() -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name(REMINDER_ORCHESTRATOR)
    @bp.orchestration_trigger(context_name="context")
    def aos_reminder(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        """Wait for one reminder version's due time (or a cancel), then fire it."""
        fire = context.get_input()
        due = datetime.fromisoformat(str(fire["due"]).replace("Z", "+00:00"))
        timer = context.create_timer(due)
        cancel = context.wait_for_external_event("cancel")
        winner = yield context.task_any([timer, cancel])
        if winner == cancel:
            if not timer.is_completed:
                timer.cancel()
            return {"fired": False, "cancelled": True}
        agent = df.EntityId(ENTITY_NAME, fire["agent_id"])
        answer = yield context.call_entity(agent, "fire_reminder", fire)
        upcoming = answer.get("next") if isinstance(answer, dict) else None
        if upcoming:
            context.continue_as_new({**fire, **upcoming})
            return None
        return answer

    return bp
