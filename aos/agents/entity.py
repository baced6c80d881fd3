"""The ``agent`` Durable entity: one perpetual agent per entity key.

The durable SDK calls ``AgentEntity`` once per operation of a batch with the same
``DurableEntityContext``. Rules this module follows (measured, see docs/SDK_NOTES.md):

* the SDK does not roll back on exceptions and ``get_state`` returns the live object, so every
  operation builds a new document and only then calls ``set_state``; the stored dict is never
  mutated;
* the SDK does not reset the result between operations, so every operation calls ``set_result``;
* ``set_result`` marks an entity as existing, so reads of a never-configured agent call
  ``destruct_on_exit`` to keep it non-existent;
* input is read only by operations that take one, and a missing or ``null`` input means "no input".

Loading the stored state into a typed context costs more than the SDK's whole per-operation work, so
the agent rebuilt for the first operation of a batch is kept in the batch's ``EntityBatch`` (made by
the entity function for each invocation, see ``aos.functions.entity_function``) and reused while the state
is the one it produced.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from aos.agents import AgentKinds, PerpetualAgent, PurposeDrivenAgent, thinking
from aos.domain.document import ContextDocument
from aos.domain.effects import Effect
from aos.domain.history import HistoryRecord
from aos.domain.limits import Limits
from aos.domain.models import (
    GoalRef,
    SpecUpdate,
    StateDelete,
    StateWrite,
    format_timestamp,
    utc_now,
)
from aos.domain.reminders import ReminderCancel, ReminderFire, ReminderSet
from aos.domain.turns import TurnEnd, TurnRef, TurnStep
from aos.domain.validation import parse
from aos.errors import AgentNotFoundError, AOSError, InvalidInputError, UnknownOperationError

__all__ = [
    "ENTITY_NAME",
    "OPERATIONS",
    "AgentEntity",
    "EntityBatch",
    "EntityContext",
    "context_summary",
]

ENTITY_NAME = "agent"
logger = logging.getLogger("aos.agents.entity")


class EntityContext(Protocol):
    """The part of ``azure.durable_functions.DurableEntityContext`` the entity uses."""

    @property
    def entity_key(self) -> str: ...
    @property
    def operation_name(self) -> str | None: ...
    def get_state(self, initializer: Callable[[], Any] | None = None) -> Any: ...
    def set_state(self, state: Any) -> None: ...
    def get_input(self) -> Any: ...
    def set_result(self, result: Any) -> None: ...
    def destruct_on_exit(self) -> None: ...


@dataclass(slots=True)
class EntityBatch:
    """What the operations of one batch share, owned by the entity function's invocation.

    ``journal`` collects the history records of the batch's successful operations (``None``:
    nothing archives them, so none are made); ``agent`` is the agent rebuilt for the batch, reused
    while the state is the one it produced; ``received_at`` is when the batch arrived (the receive
    time of each of its events, formatted once). ``effects`` collects the sends and publishes of
    the batch's successful operations, emitted after the archive write (``None``: nothing would
    emit them; they are dropped)."""

    journal: list[HistoryRecord] | None = None
    effects: list[Effect] | None = None
    agent: PerpetualAgent | None = None
    received_at: str | None = field(default=None)


def context_summary(document: ContextDocument) -> dict[str, Any]:
    """What ``configure`` answers: the spec plus the counters and timestamps, not the windows."""
    raw = document.raw
    return {
        **raw["spec"],
        "goals": len(raw["goals"]),
        "counters": raw["counters"],
        "created_at": raw["created_at"],
        "updated_at": raw["updated_at"],
    }


class AgentEntity:
    """The entity function: ``entity(context)`` runs one operation."""

    def __init__(self, kinds: AgentKinds, limits: Limits) -> None:
        self.kinds = kinds
        self.limits = limits
        self._operations: dict[
            str, Callable[[EntityContext, PerpetualAgent | None, EntityBatch], Any]
        ] = {
            "configure": self._configure,
            "handle_event": self._handle_event,
            "handle_events": self._handle_events,
            "add_goal": self._add_goal,
            "update_goal": self._update_goal,
            "remove_goal": self._remove_goal,
            "update_state": self._update_state,
            "delete_state": self._delete_state,
            "decide": self._decide,
            "get": self._get,
            "deregister": self._deregister,
            "set_reminder": self._set_reminder,
            "cancel_reminder": self._cancel_reminder,
            "fire_reminder": self._fire_reminder,
            "begin_turn": self._begin_turn,
            "apply_turn_step": self._apply_turn_step,
            "end_turn": self._end_turn,
        }

    def for_batch(self, batch: EntityBatch) -> Callable[[EntityContext], None]:
        """The function the SDK's ``Entity.create`` runs for each operation of one batch."""
        return partial(self.run, batch=batch)

    def __call__(self, context: EntityContext) -> None:
        """Run one operation as a batch of its own (the SDK's plain entity-function shape)."""
        self.run(context, EntityBatch())

    def run(self, context: EntityContext, batch: EntityBatch) -> None:
        """Run the context's current operation within ``batch``."""
        name = context.operation_name or ""
        try:
            operation = self._operations.get(name)
            if operation is None:
                raise UnknownOperationError(
                    f"The agent entity has no operation {name!r}; "
                    f"known operations: {', '.join(OPERATIONS)}"
                )
            agent = self._agent(context, batch)
            if agent is not None and (agent.journal is None) is not (batch.journal is None):
                agent.journal = None if batch.journal is None else []  # only what is archived
            result = operation(context, agent, batch)
        except AOSError as exc:  # refused: the caller's input or the agent's state says no
            self._finish(context, None)
            logger.warning("agent %s: %s refused: %s", context.entity_key, name, exc)
            raise
        except Exception:
            self._finish(context, None)
            logger.exception("agent %s: %s failed", context.entity_key, name)
            raise
        self._finish(context, result)
        if batch.agent is not None:
            if batch.journal is not None:
                records = batch.agent.take_journal()
                if name == "handle_events":  # the delivery's receipts: confirmed as archived
                    for record in records:
                        record.confirms_receipt = record.kind == "event"
                batch.journal.extend(records)
            effects = batch.agent.take_effects()
            if batch.effects is not None:
                batch.effects.extend(effects)
            elif effects:
                logger.warning(
                    "agent %s: %d sends/publishes dropped: nothing emits effects here",
                    context.entity_key,
                    len(effects),
                )

    # ------------------------------------------------------------------------------ plumbing
    @staticmethod
    def _finish(context: EntityContext, result: Any) -> None:
        """Always set a result (the SDK would repeat the previous operation's), without letting
        ``set_result`` bring a never-configured or just-deregistered agent into existence."""
        context.set_result(result)
        if context.get_state() is None:
            context.destruct_on_exit()

    def _agent(self, context: EntityContext, batch: EntityBatch) -> PerpetualAgent | None:
        state = context.get_state()
        if state is None:
            return None
        agent = batch.agent
        if agent is None or agent.document.raw is not state:
            agent = self._rebuild(ContextDocument.load(state))
            batch.agent = agent
        return agent

    def _rebuild(self, document: ContextDocument) -> PerpetualAgent:
        return self.kinds.resolve(document.kind).from_document(document, limits=self.limits)

    @staticmethod
    def _commit(context: EntityContext, batch: EntityBatch, agent: PerpetualAgent) -> None:
        context.set_state(agent.document.raw)
        batch.agent = agent

    @staticmethod
    def _received_at(batch: EntityBatch) -> str:
        if batch.received_at is None:
            batch.received_at = format_timestamp(utc_now())
        return batch.received_at

    @staticmethod
    def _input(context: EntityContext) -> Any:
        try:
            return context.get_input()
        except (TypeError, KeyError):
            return None  # no input, or a null one
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"operation input is not JSON: {exc}") from exc

    @staticmethod
    def _existing(context: EntityContext, agent: PerpetualAgent | None) -> PerpetualAgent:
        if agent is None:
            raise AgentNotFoundError(context.entity_key)
        return agent

    def _purpose_driven(
        self, context: EntityContext, agent: PerpetualAgent | None, operation: str
    ) -> PurposeDrivenAgent:
        agent = self._existing(context, agent)
        if not isinstance(agent, PurposeDrivenAgent):
            raise UnknownOperationError(f"agents of kind {agent.kind!r} do not support {operation}")
        return agent

    # ------------------------------------------------------------------------------ operations
    def _configure(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        update = parse(SpecUpdate, self._input(context), what="agent spec")
        if update.kind is not None:
            self.kinds.resolve(update.kind)  # an unknown kind fails before anything changes
        if agent is None:
            document = ContextDocument.create(
                update.apply_to(context.entity_key, None), self.limits
            )
        else:
            agent.configure(update)
            document = agent.document
        configured = self._rebuild(document)  # the kind may have changed
        self._commit(context, batch, configured)
        return context_summary(configured.document)

    def _handle_event(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        agent = self._existing(context, agent)
        outcome = agent.receive(self._input(context), received_at=self._received_at(batch))
        self._commit(context, batch, agent)
        _log_failure(context, outcome)
        return outcome

    def _handle_events(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        """Several events in one operation, applied in order exactly as ``handle_event`` would
        apply each: the delivery sends one when events for one agent arrive together
        (``aos.services.batching``), which saves a signal and an operation per event. An event
        the agent refuses (not a valid event) is answered as refused; the others still apply."""
        agent = self._existing(context, agent)
        events = self._input(context)
        if not isinstance(events, list):
            raise InvalidInputError("handle_events takes a list of events")
        received_at = self._received_at(batch)
        outcomes: list[dict[str, Any]] = []
        for event in events:
            try:
                outcome = agent.receive(event, received_at=received_at)
            except AOSError as exc:
                event_id = event.get("event_id") if isinstance(event, dict) else None
                logger.warning("agent %s: event %s refused: %s", context.entity_key, event_id, exc)
                outcomes.append({"event_id": event_id, "status": "refused", "error": str(exc)})
                continue
            _log_failure(context, outcome)
            outcomes.append(outcome)
        self._commit(context, batch, agent)
        return outcomes

    def _add_goal(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        agent = self._purpose_driven(context, agent, "goals")
        goal = agent.create_goal(self._input(context))
        self._commit(context, batch, agent)
        return goal.model_dump(mode="json")

    def _update_goal(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        agent = self._purpose_driven(context, agent, "goals")
        goal = agent.change_goal(self._input(context))
        self._commit(context, batch, agent)
        return goal.model_dump(mode="json")

    def _remove_goal(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        agent = self._purpose_driven(context, agent, "goals")
        raw = self._input(context)
        ref = parse(GoalRef, {"id": raw} if isinstance(raw, str) else raw, what="goal reference")
        goal = agent.delete_goal(ref.id)
        self._commit(context, batch, agent)
        return goal.model_dump(mode="json")

    def _update_state(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        agent = self._existing(context, agent)
        write = parse(StateWrite, self._input(context), what="state write")
        agent.set_state_value(write.key, write.value)
        self._commit(context, batch, agent)
        return None

    def _delete_state(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        agent = self._existing(context, agent)
        raw = self._input(context)
        delete = parse(StateDelete, {"key": raw} if isinstance(raw, str) else raw, what="state key")
        removed = agent.delete_state_value(delete.key)
        self._commit(context, batch, agent)
        return {"key": delete.key, "deleted": removed}

    def _decide(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        agent = self._purpose_driven(context, agent, "decide")
        decision = agent.decide(self._input(context))
        self._commit(context, batch, agent)
        return decision.model_dump(mode="json")

    def _get(self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch) -> Any:
        if agent is None:
            return None
        return agent.document.raw  # never mutated afterwards: documents are copy-on-write

    def _set_reminder(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        agent = self._existing(context, agent)
        change = parse(ReminderSet, self._input(context), what="reminder")
        created = agent.context.reminder(change.reminder_id) is None
        reminder, effect = agent.schedule_reminder(
            change.reminder_id, change.request, version=change.version, now=change.now,
            cause_id=None,
        )  # fmt: skip
        agent.effects.append(effect)
        self._commit(context, batch, agent)
        return {"created": created, "reminder": reminder.model_dump(mode="json")}

    def _cancel_reminder(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        agent = self._existing(context, agent)
        change = parse(ReminderCancel, self._input(context), what="reminder")
        effect = agent.drop_reminder(change.reminder_id, cause_id=None, version=change.version)
        if effect is not None:
            agent.effects.append(effect)
            self._commit(context, batch, agent)
        return {"reminder_id": change.reminder_id, "cancelled": effect is not None}

    def _fire_reminder(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        fire = parse(ReminderFire, self._input(context), what="reminder")
        if agent is None:  # deregistered: the orchestration ends
            return {"fired": False, "next": None}
        answer = agent.fire_reminder(fire, received_at=self._received_at(batch))
        if answer["fired"]:
            self._commit(context, batch, agent)
        return answer

    def _begin_turn(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        raw = self._input(context)
        ref = parse(TurnRef, {"turn_id": raw} if isinstance(raw, str) else raw, what="turn")
        if agent is None:  # deregistered while the turn waited
            return {"status": "gone"}
        before = agent.document
        answer = thinking.begin_turn(agent, ref.turn_id, ref.deadline)
        if agent.document is not before:
            self._commit(context, batch, agent)
        return answer

    def _apply_turn_step(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        step = parse(TurnStep, self._input(context), what="turn step")
        if agent is None:
            return {"applied": False, "gone": True, "results": []}
        answer = thinking.apply_turn_step(agent, step)
        if answer["applied"]:
            self._commit(context, batch, agent)
        return answer

    def _end_turn(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        end = parse(TurnEnd, self._input(context), what="turn end")
        if agent is None:
            return {"ended": False, "next": None}
        answer = thinking.end_turn(agent, end)
        if answer["ended"]:
            self._commit(context, batch, agent)
        return answer

    def _deregister(
        self, context: EntityContext, agent: PerpetualAgent | None, batch: EntityBatch
    ) -> Any:
        context.destruct_on_exit()
        if agent is not None:
            thinking.wake_waiting_turns(agent)  # so they end instead of waiting forever
        return {"agent_id": context.entity_key, "deregistered": agent is not None}


def _log_failure(context: EntityContext, outcome: dict[str, Any]) -> None:
    """A handler's failure is recorded in the context and the history; logged too."""
    if outcome["status"] == "failed":
        logger.warning(
            "agent %s: the handler failed on event %s: %s",
            context.entity_key,
            outcome["event_id"],
            outcome["error"]["message"],
        )


OPERATIONS = (
    "configure",
    "handle_event",
    "add_goal",
    "update_goal",
    "remove_goal",
    "update_state",
    "delete_state",
    "decide",
    "get",
    "deregister",
    "set_reminder",
    "cancel_reminder",
    "fire_reminder",
    "begin_turn",
    "apply_turn_step",
    "end_turn",
    "handle_events",
)
