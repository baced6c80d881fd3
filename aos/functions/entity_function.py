# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""The Durable entity function ``agent`` (logic in ``aos.agents.entity``).

The Python SDK runs a batch in ``Entity.create(fn)``'s handle and offers no hook after the last
operation, but the history archive wants one write per batch (``aos.domain.history``). So the function
is registered as the SDK's own decorator registers it -- an ``entityTrigger`` binding named
``context`` (annotated ``EntityContext``, the type the worker's converter checks for) whose
function returns the SDK's result JSON -- with the SDK's
handle inside it, and the batch's history records are archived after the handle returns and before
the result goes back to the host. Nothing of the SDK's execution path is replaced. The function is
synchronous, as the SDK's entity functions are (the worker runs it on a thread); its writes go
through ``AppRuntime.complete_batch``, which hands them to the worker's event loop when one is
running, so that the thread does not sit on a socket.

Then the batch's effects (events its agents sent or published, ``aos.domain.effects``) go to the
events queue, with ids derived from the events that caused them.

If the archive cannot be written (or the effects sent) the invocation fails and the host receives
no result for the batch, so no state is committed that the archive does not reflect; executed again, the batch
rewrites the same rows (the keys come from the state it starts from) and sends the same events
again, which the delivery receipts drop.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from aos.agents.entity import ENTITY_NAME, EntityBatch
from aos.functions.container import AppRuntime

__all__ = ["entity_blueprint"]


def entity_blueprint(runtime: AppRuntime) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name(ENTITY_NAME)
    @bp.generic_trigger(arg_name="context", type="entityTrigger", entityName=ENTITY_NAME)
    def agent(context: func.EntityContext) -> str:
        """One perpetual agent per entity key; operations in ``aos.agents.entity``."""
        batch = EntityBatch(
            journal=[] if runtime.archives else None,
            effects=[] if runtime.emits else None,
        )
        handle = df.Entity.create(runtime.entity.for_batch(batch))
        result: str = handle(context)
        runtime.complete_batch(batch.journal or [], batch.effects or [])
        return result

    return bp
