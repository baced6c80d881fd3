"""``PerpetualAgent``: an agent registered once that keeps its context between events.

In Azure Functions an agent does not run as a process. It is a Durable entity: the host loads its
state when an operation arrives ("wake on event"), the entity function rebuilds the agent object
from that state, runs one operation, stores the new state and unloads ("sleep when idle"). So the
methods come in two layers:

* synchronous cores (``receive``, ``set_state_value``, ...) that the entity calls; each either
  completes or leaves ``self.document`` exactly as it was;
* the seed's ``async`` methods (``initialize``, ``handle_event``, ``update_state``, ``get_state``,
  ``save_state``, ``load_state``, ``cleanup``) for using an agent directly from Python, which run
  a core and persist through ``self.context_server``.

Subclasses say what the agent does with an event by overriding ``on_event``. It runs inside the
entity's batch, synchronously: keep it quick and deterministic, and do slow I/O elsewhere (send an
event or use an orchestration), as the Durable Functions guidance for entities advises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self

from pydantic import BaseModel, JsonValue, ValidationError

from aos.agents.thinking import release_abandoned_turn
from aos.domain.contexts import ContextServer, ContextStore
from aos.domain.document import STRICT_JSON, ContextDocument, id_digest, summarize_event
from aos.domain.effects import MAX_EFFECTS_PER_EVENT, Effect, EffectKind, effect_event_id
from aos.domain.history import HistoryKind, HistoryRecord
from aos.domain.limits import Limits
from aos.domain.models import (
    AgentContext,
    AgentSpec,
    Event,
    Reminder,
    SpecUpdate,
    format_timestamp,
    new_id,
    utc_now,
)
from aos.domain.reminders import (
    ReminderControl,
    ReminderFire,
    ReminderRequest,
    fire_event_id,
    instance_id,
    next_due,
)
from aos.domain.turns import (
    MAX_MESSAGE_CHARS,
    MAX_QUEUED_TURNS,
    MESSAGE_EVENT_TYPE,
    TurnControl,
    TurnSource,
    TurnStart,
    event_prompt,
    message_content,
    turn_id_for,
)
from aos.domain.validation import parse
from aos.errors import AOSError, InvalidInputError, LimitExceededError

__all__ = ["RESERVED_STATE_KEYS", "PerpetualAgent"]

_ERROR_CHARS = 1000
"""How much of a failed handler's error message the failure record keeps."""

RESERVED_STATE_KEYS = frozenset({"last_event", "events_handled", "recent_events"})
"""Keys ``get_state`` answers from the agent's bookkeeping; ``update_state`` refuses them."""


class PerpetualAgent:
    """The base agent: identity, key/value state, event handling, lifecycle, thinking (the
    operations a turn calls on it are in ``aos.agents.thinking``)."""

    kind: ClassVar[str] = "perpetual"
    default_purpose: ClassVar[str] = "Respond to the events it receives and keep its context"
    thinks_about: ClassVar[tuple[str, ...]] = ()
    """Event types that make this agent think: after ``on_event`` has handled such an event, a
    turn starts with the event as its prompt (``aos.domain.turns``). ``"*"`` is every type."""

    document: ContextDocument
    limits: Limits
    context_server: ContextServer | None
    journal: list[HistoryRecord] | None
    """History records of changes not yet archived (see ``aos.domain.history``; ``take_journal``), or
    ``None`` while nothing would archive them (the entity without an archive), so none are made."""
    effects: list[Effect]
    """Events sent and published (``send``, ``publish``) not yet handed on (``take_effects``)."""
    _cause: Event | None
    """The event being handled, while ``on_event`` runs."""
    _received_at: str | None = None
    """When the event being handled arrived (the batch's time), while ``on_event`` runs."""

    def __init__(
        self,
        agent_id: str,
        adapter_name: str = "default",
        *,
        purpose: str | None = None,
        purpose_scope: str = "",
        success_criteria: Sequence[str] = (),
        subscriptions: Sequence[str] = (),
        requires_approval: Sequence[str] = (),
        limits: Limits | None = None,
        context_server: ContextServer | None = None,
    ) -> None:
        spec = parse(
            AgentSpec,
            {
                "agent_id": agent_id,
                "kind": self.kind,
                "purpose": purpose or self.default_purpose,
                "purpose_scope": purpose_scope,
                "success_criteria": tuple(success_criteria),
                "adapter_name": adapter_name,
                "subscriptions": tuple(subscriptions),
                "requires_approval": tuple(requires_approval),
            },
            what="agent spec",
        )
        self.limits = limits or Limits()
        self.document = ContextDocument.create(spec, self.limits)
        self.context_server = context_server
        self.journal = []
        self.effects = []
        self._cause = None

    @classmethod
    def from_document(cls, document: ContextDocument, *, limits: Limits) -> Self:
        """Rebuild an agent from stored state: what the entity does on every batch."""
        agent = cls.__new__(cls)
        agent.document = document
        agent.limits = limits
        agent.context_server = None
        agent.journal = []
        agent.effects = []
        agent._cause = None
        return agent

    # ------------------------------------------------------------------------------ reading
    @property
    def agent_id(self) -> str:
        return self.document.agent_id

    @property
    def context(self) -> AgentContext:
        """The whole persisted context, typed."""
        return self.document.context

    @property
    def spec(self) -> AgentSpec:
        return self.document.context.spec

    @property
    def purpose(self) -> str:
        return self.spec.purpose

    @property
    def adapter_name(self) -> str:
        return self.spec.adapter_name

    # ------------------------------------------------------------------------------ sync cores
    def configure(self, update: SpecUpdate | Mapping[str, Any]) -> AgentContext:
        """Change the spec (purpose, scope, criteria, adapter, subscriptions, kind)."""
        update = parse(SpecUpdate, update, what="agent spec")
        spec = update.apply_to(self.agent_id, self.spec)
        self.document = self.document.replace(self.limits, spec=spec)
        return self.context

    def receive(
        self, event: Event | Mapping[str, Any], *, received_at: str | None = None
    ) -> dict[str, Any]:
        """Apply an event once: a repeated ``event_id`` is counted and otherwise ignored.

        If the handler (``on_event``) raises, nothing it did stays: the failure is counted
        (``events_failed``), journaled as a ``failure`` record with the error, and the outcome's
        status is ``failed``. The event id is not remembered, so the same event sent again (after
        a fix) is applied. ``received_at`` (a formatted timestamp) defaults to now; the entity
        passes the time its batch arrived, shared by every event of the batch.
        """
        return self._receive(event, received_at)[0]

    def _receive(
        self, event: Event | Mapping[str, Any], received_at: str | None
    ) -> tuple[dict[str, Any], Exception | None]:
        if not isinstance(event, Event):
            event = _parse_event(event)
        digest = id_digest(event.event_id)
        if self.document.has_processed(digest):
            self.document = self.document.with_duplicate()
            return {"event_id": event.event_id, "status": "duplicate"}, None
        # on_event may decide, change goals and state, send and publish: undo all of it if the
        # event fails
        before, journaled = self.document, len(self.journal) if self.journal is not None else 0
        emitted = len(self.effects)
        received_at = received_at or format_timestamp(utc_now())
        try:
            sequence = self.document.events_handled + 1
            self._cause, self._received_at = event, received_at
            try:
                result: JsonValue
                if event.type == MESSAGE_EVENT_TYPE:
                    result = {"turn_id": self.request_turn(message_content(event), "message")}
                else:
                    result = self.on_event(event)
                    if event.type in self.thinks_about or "*" in self.thinks_about:
                        self.request_turn(event_prompt(event), "event")
            finally:
                self._cause, self._received_at = None, None
            if result is not None:
                _ensure_json(result, what=f"{type(self).__name__}.on_event result", error=AOSError)
            summary = summarize_event(
                event, received_at=received_at, preview_bytes=self.limits.event_preview_bytes
            )
            self.document = self.document.with_event(summary, digest, self.limits)
            self._journal("event", event.event_id, event.type, received_at, event, result)
            for number, effect in enumerate(self.effects[emitted:], start=1):
                self._journal(
                    effect.kind, event.event_id, effect.type, received_at, effect.payload,
                    effect=number,
                )  # fmt: skip
        except Exception as exc:
            self._undo(before, journaled, emitted)
            error = {"type": type(exc).__name__, "message": str(exc)[:_ERROR_CHARS]}
            self.document = before.with_failure(received_at)
            self._journal("failure", event.event_id, event.type, received_at, event, None, error)
            return {"event_id": event.event_id, "status": "failed", "error": error}, exc
        except BaseException:
            self._undo(before, journaled, emitted)
            raise
        return {
            "event_id": event.event_id,
            "status": "applied",
            "sequence": sequence,
            "result": result,
        }, None

    def _undo(self, document: ContextDocument, journaled: int, emitted: int) -> None:
        self.document = document
        if self.journal is not None:
            del self.journal[journaled:]
        del self.effects[emitted:]

    # ------------------------------------------------------------------------------ effects
    def send(
        self, agent_id: str, type: str, data: JsonValue = None, *, event_id: str | None = None
    ) -> Event:
        """Send an event to the agent ``agent_id``. Inside ``on_event`` it is part of the
        operation: delivered once when the operation's batch ends, never if the handler raises.
        Without ``event_id`` the id is derived from the event being handled, so a batch the host
        runs again sends the same event, which delivery recognises."""
        return self._emit("send", type, data, event_id, agent_id)

    def publish(self, type: str, data: JsonValue = None, *, event_id: str | None = None) -> Event:
        """Publish an event to every agent subscribed to ``type`` when it is delivered (see
        ``send`` for when and how often)."""
        return self._emit("publish", type, data, event_id, None)

    def remind(
        self,
        reminder_id: str,
        *,
        type: str,
        data: JsonValue = None,
        at: datetime | None = None,
        after: float | timedelta | None = None,
        every: float | timedelta | None = None,
    ) -> Reminder:
        """Wake this agent with the event ``type``/``data`` at ``at``, or ``after`` a delay, and
        with ``every`` again at that interval (the first time one interval from now if neither
        is given). The same ``reminder_id`` again replaces the reminder. Inside ``on_event`` a
        delay counts from the causing event's ``created_at`` (the same on every run of the batch),
        and the change is part of the operation like ``send``."""
        request = parse(
            ReminderRequest,
            {
                "type": type, "data": data, "at": at,
                "after_seconds": _seconds(after), "every_seconds": _seconds(every),
            },
            what="reminder",
        )  # fmt: skip
        cause = self._cause
        cause_id = cause.event_id if cause is not None else None
        made = sum(1 for e in self.effects if e.cause_id == cause_id)
        self._check_effects(made)
        version = effect_event_id(cause_id, made) if cause_id is not None else new_id()
        now = cause.created_at if cause is not None else utc_now()
        reminder, effect = self.schedule_reminder(
            reminder_id, request, version=version, now=now, cause_id=cause_id
        )
        self.effects.append(effect)
        return reminder

    def cancel_reminder(self, reminder_id: str) -> bool:
        """Cancel a reminder: it never fires again. ``False`` if there was none."""
        cause = self._cause
        cause_id = cause.event_id if cause is not None else None
        self._check_effects(sum(1 for e in self.effects if e.cause_id == cause_id))
        effect = self.drop_reminder(reminder_id, cause_id=cause_id)
        if effect is None:
            return False
        self.effects.append(effect)
        return True

    def schedule_reminder(
        self,
        reminder_id: str,
        request: ReminderRequest,
        *,
        version: str,
        now: datetime,
        cause_id: str | None,
    ) -> tuple[Reminder, Effect]:
        """Record (or replace) a reminder in the state; returns it and the effect that starts its
        orchestration (and stops the replaced one's). Refuses more than ``max_reminders`` and
        data beyond the user budget."""
        current = self.context.reminders
        previous = self.context.reminder(reminder_id)
        reminder = parse(
            Reminder,
            {
                "reminder_id": reminder_id, "type": request.type, "data": request.data,
                "due": request.first_due(now), "every_seconds": request.every_seconds,
                "version": version,
            },
            what="reminder",
        )  # fmt: skip
        _ensure_json(reminder.data, what="reminder data", error=InvalidInputError)
        if previous is None and len(current) >= self.limits.max_reminders:
            raise LimitExceededError(
                f"an agent has at most {self.limits.max_reminders} active reminders"
            )
        others = tuple(r for r in current if r.reminder_id != reminder_id)
        self.document = self.document.replace(self.limits, reminders=(*others, reminder))
        control = ReminderControl(
            agent_id=self.agent_id,
            reminder_id=reminder_id,
            schedule=ReminderFire(
                agent_id=self.agent_id, reminder_id=reminder_id, version=version,
                due=reminder.due,
            ),
            stop=_instance(self.agent_id, previous),
        )  # fmt: skip
        payload = reminder.model_dump(mode="json")
        if cause_id is None:  # over the API or from plain Python: recorded now, by its version
            self._journal_change("reminder_scheduled", version, request.type, payload)
        return reminder, Effect.of_reminder("reminder_scheduled", control, payload, cause_id)

    def drop_reminder(
        self, reminder_id: str, *, cause_id: str | None, version: str | None = None
    ) -> Effect | None:
        """Remove a reminder from the state; the effect that stops its orchestration, or
        ``None`` if there was no such reminder. ``version`` names the change in history when
        there is no causing event."""
        previous = self.context.reminder(reminder_id)
        if previous is None:
            return None
        others = tuple(r for r in self.context.reminders if r.reminder_id != reminder_id)
        self.document = self.document.replace(self.limits, reminders=others)
        control = ReminderControl(
            agent_id=self.agent_id,
            reminder_id=reminder_id,
            stop=_instance(self.agent_id, previous),
        )
        payload = previous.model_dump(mode="json")
        if cause_id is None:
            self._journal_change("reminder_cancelled", version or new_id(), previous.type, payload)
        return Effect.of_reminder("reminder_cancelled", control, payload, cause_id)

    def _journal_change(
        self, kind: HistoryKind, change_id: str, type_: str, payload: dict[str, Any]
    ) -> None:
        """A change made outside an event shares the last record's sequence; a number derived
        from its id sets it apart (below 2**31, past the 01..32 of an event's effects)."""
        digest = hashlib.blake2b(change_id.encode(), digest_size=4).digest()
        number = 100 + int.from_bytes(digest) % (2**31 - 100)
        self._journal(kind, change_id, type_, format_timestamp(utc_now()), payload, effect=number)

    def fire_reminder(self, fire: ReminderFire, *, received_at: str) -> dict[str, Any]:
        """A reminder's orchestration says its time has come: if that version is still active
        and due then, advance it (or remove a one-shot one) and apply its event; answer whether
        it fired and the version and time to wait for next (``None``: the orchestration ends)."""
        reminder = self.context.reminder(fire.reminder_id)
        if reminder is None or reminder.version != fire.version or reminder.due != fire.due:
            return {"fired": False, "next": None}
        now = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
        following = next_due(reminder, now)
        others = tuple(r for r in self.context.reminders if r.reminder_id != reminder.reminder_id)
        if following is None:
            kept: tuple[Reminder, ...] = others
        else:
            kept = (*others, reminder.model_copy(update={"due": following}))
        self.document = self.document.replace(self.limits, reminders=kept)
        event = Event.model_validate(
            {
                "event_id": fire_event_id(reminder), "agent_id": self.agent_id,
                "type": reminder.type, "data": {} if reminder.data is None else reminder.data,
                "source": "reminder", "correlation_id": reminder.reminder_id,
                "created_at": reminder.due,
            }
        )  # fmt: skip
        journaled = len(self.journal) if self.journal is not None else 0
        outcome = self.receive(event, received_at=received_at)
        if self.journal is not None and outcome["status"] != "duplicate":
            number = len(self.journal) - journaled
            self._journal(
                "reminder_fired", event.event_id, reminder.type, received_at,
                reminder.model_dump(mode="json"), effect=number,
            )  # fmt: skip
        after = self.context.reminder(reminder.reminder_id)
        upcoming = None
        if after is not None and after.version == reminder.version:
            upcoming = {"version": after.version, "due": format_timestamp(after.due)}
        return {"fired": True, "event_id": event.event_id, "next": upcoming}

    # ------------------------------------------------------------------------------ thinking
    def think(self, prompt: str) -> str:
        """Inside ``on_event``: start a turn -- the agent's model answers ``prompt`` with the
        agent's context, calling tools as it needs -- and return its id. Like ``send``, the turn
        is part of the operation (requested once, never if the handler raises); it runs after
        the batch, as an orchestration, one turn at a time per agent."""
        return self.request_turn(prompt, "handler")

    def request_turn(self, prompt: str, source: TurnSource) -> str:
        """Ask for a turn while handling the current event: it runs now if no other turn does,
        else it waits in the bounded queue (``MAX_QUEUED_TURNS``; one more is refused)."""
        cause = self._cause
        if cause is None:
            raise InvalidInputError(
                "think() starts a turn from a handler (on_event); from outside, send the agent "
                "a message (POST /api/agents/{id}/messages)"
            )
        if not isinstance(prompt, str) or not 1 <= len(prompt) <= MAX_MESSAGE_CHARS:
            raise InvalidInputError(f"a prompt is a string of 1 to {MAX_MESSAGE_CHARS} characters")
        mine = [e for e in self.effects if e.cause_id == cause.event_id]
        self._check_effects(len(mine))
        index = sum(1 for e in mine if e.kind == "turn_requested")
        turn_id = turn_id_for(self.agent_id, cause.event_id, index)
        # the arrival time, not the event's own created_at, which a client may set at will
        arrived = self._received_at
        release_abandoned_turn(
            self,
            datetime.fromisoformat(arrived.replace("Z", "+00:00")) if arrived else utc_now(),
        )
        turns = self.context.turns
        if turns.knows(turn_id):
            return turn_id
        go = turns.active is None
        if go:
            changed = turns.model_copy(
                update={"active": turn_id, "active_since": format_timestamp(cause.created_at)}
            )
        elif len(turns.queued) >= MAX_QUEUED_TURNS:
            raise LimitExceededError(
                f"agent {self.agent_id!r} has {MAX_QUEUED_TURNS} turns waiting already; "
                "try again when one has finished"
            )
        else:
            changed = turns.model_copy(update={"queued": (*turns.queued, turn_id)})
        self.document = self.document.replace(self.limits, turns=changed)
        start = TurnStart(
            agent_id=self.agent_id, turn_id=turn_id, prompt=prompt, source=source,
            cause_id=cause.event_id, hops=cause.hops, go=go, requested_at=cause.created_at,
        )  # fmt: skip
        payload = {"turn_id": turn_id, "source": source, "prompt": prompt, "queued": not go}
        # a turn that may run now is also woken: its orchestration may exist already, started
        # by the API when it took the message, and wait for this agent to know the turn
        control = TurnControl(agent_id=self.agent_id, turn_id=turn_id, start=start, wake=go)
        self.effects.append(Effect.of_turn("turn_requested", control, payload, cause.event_id))
        return turn_id

    def take_effects(self) -> list[Effect]:
        """The sends and publishes made since the last call, oldest first, to be emitted."""
        effects, self.effects = self.effects, []
        return effects

    def _emit(
        self,
        kind: EffectKind,
        type_: str,
        data: JsonValue,
        event_id: str | None,
        agent_id: str | None,
    ) -> Event:
        cause = self._cause
        cause_id = cause.event_id if cause is not None else None
        made = sum(1 for e in self.effects if e.cause_id == cause_id)
        self._check_effects(made)
        fields: dict[str, Any] = {
            "type": type_,
            "data": {} if data is None else data,
            "source": self.agent_id,
        }
        if agent_id is not None:
            fields["agent_id"] = agent_id
        if event_id is not None:
            fields["event_id"] = event_id
        elif cause_id is not None:
            fields["event_id"] = effect_event_id(cause_id, made)
        if cause is not None:
            fields["hops"] = cause.hops + 1
            fields["correlation_id"] = cause.correlation_id or cause.event_id[:64]
            fields["created_at"] = cause.created_at  # the same on every run of the batch
        event = parse(Event, fields, what=f"{kind} event")
        self.effects.append(Effect.of_event(kind, event, cause_id))
        return event

    @staticmethod
    def _check_effects(made: int) -> None:
        if made >= MAX_EFFECTS_PER_EVENT:
            raise LimitExceededError(
                f"an event may cause at most {MAX_EFFECTS_PER_EVENT} sends, publishes and "
                "reminder changes"
            )

    def take_journal(self) -> list[HistoryRecord]:
        """The records of the changes made since the last call, oldest first, for the archive."""
        records = self.journal
        if not records:
            return []
        self.journal = []
        return records

    def _journal(
        self,
        kind: HistoryKind,
        event_id: str,
        type_: str,
        recorded_at: str,
        payload: dict[str, Any] | BaseModel,
        result: Any = None,
        error: dict[str, str] | None = None,
        *,
        effect: int = 0,
    ) -> None:
        """Record the change just made to ``self.document``; its sequence comes from the counters
        (see ``aos.domain.history``), so the same state always yields the same key."""
        if self.journal is None:
            return
        raw = self.document.raw
        counters = raw["counters"]
        sequence = (
            counters["events_handled"]
            + counters["decisions_made"]
            + counters.get("events_failed", 0)  # absent from state written before it existed
        )
        record = HistoryRecord(
            raw["spec"]["agent_id"], raw["created_at"], sequence, kind, event_id, type_,
            recorded_at, payload, result, error, effect,
        )  # fmt: skip
        self.journal.append(record)

    def on_event(self, event: Event) -> JsonValue:
        """What this kind of agent does with an event. Override it; the base agent only records
        the event (which ``receive`` does for every kind)."""
        return None

    @classmethod
    def check_event(cls, event: Event) -> None:
        """Refuse (``InvalidInputError``) an event this kind could never apply, whatever its
        state: the HTTP API calls it before queueing, so such an event is a 400, not a failure
        found later. Override it together with ``on_event`` and share the rules (as
        ``PurposeDrivenAgent`` does with decision requests). Rules that depend on the state (a
        goal limit already reached) cannot be checked here: such an event is recorded as a
        failure when it arrives."""

    def set_state_value(self, key: str, value: JsonValue) -> None:
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise InvalidInputError("state keys are strings of 1 to 128 characters")
        if key in RESERVED_STATE_KEYS:
            raise InvalidInputError(f"{key!r} is maintained by the agent and cannot be set")
        _ensure_json(value, what=f"value of state key {key!r}", error=InvalidInputError)
        state = {**self.context.state, key: value}
        self.document = self.document.replace(self.limits, state=state)

    def delete_state_value(self, key: str) -> bool:
        """Remove a key; ``False`` if it was not there (deleting twice is harmless)."""
        if key not in self.context.state:
            return False
        state = {k: v for k, v in self.context.state.items() if k != key}
        self.document = self.document.replace(self.limits, state=state)
        return True

    def get_state_value(self, key: str, default: Any = None) -> Any:
        raw = self.document.raw
        if key == "last_event":
            return raw["last_event"]
        if key == "events_handled":
            return raw["counters"]["events_handled"]
        if key == "recent_events":
            return list(raw["recent_events"])
        return raw["state"].get(key, default)

    # ------------------------------------------------------------------------------ seed API
    async def initialize(self) -> None:
        """Attach a context server (a ``ContextStore`` (the seed's ``ContextMCPServer``) in memory unless one was given) and load
        any saved context, so that an agent re-created under a known id continues where it left
        off."""
        if self.context_server is None:
            self.context_server = ContextStore()
        stored = await self.context_server.load_state(agent_id=self.agent_id)
        if stored:  # nothing saved yet (None, or an empty context from a stand-in server)
            self.document = ContextDocument.load(stored)

    async def start(self) -> None:
        """Nothing to start: under Azure Functions the host wakes the entity when an operation
        arrives. Kept so code written for the seed runs unchanged."""

    async def stop(self) -> None:
        """Nothing to stop: an idle entity is unloaded by the host. See ``start``."""

    async def handle_event(self, event: Event | Mapping[str, Any]) -> dict[str, Any]:
        """Apply an event (see ``receive``) and save the context. If the handler raised, the
        failure is saved (counted and in the history) and the handler's exception re-raised."""
        outcome, error = self._receive(event, None)
        await self.save_state()
        if error is not None:
            raise error
        return outcome

    async def update_state(self, key: str, value: JsonValue) -> None:
        self.set_state_value(key, value)
        await self.save_state()

    async def delete_state(self, key: str) -> bool:
        removed = self.delete_state_value(key)
        await self.save_state()
        return removed

    async def get_state(self, key: str, default: Any = None) -> Any:
        return self.get_state_value(key, default)

    async def save_state(self) -> bool:
        """Persist the context through the context server, and archive the history records of
        the changes since the last save (no-op before ``initialize``)."""
        if self.context_server is None:
            return False
        await self.context_server.save_state(agent_id=self.agent_id, context=self.document.raw)
        await self.context_server.archive(records=self.take_journal())
        return True

    async def load_state(self) -> dict[str, Any]:
        """The key/value state as last saved (reloading the whole context from the server)."""
        if self.context_server is not None:
            stored = await self.context_server.load_state(agent_id=self.agent_id)
            if stored:
                self.document = ContextDocument.load(stored)
        return dict(self.context.state)

    async def cleanup(self) -> None:
        """Save and release the context server. The agent itself lives on in its stored state."""
        if self.context_server is not None:
            await self.save_state()
            await self.context_server.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(agent_id={self.agent_id!r}, kind={self.document.kind!r})"


def _seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _instance(agent_id: str, reminder: Reminder | None) -> str | None:
    if reminder is None:
        return None
    return instance_id(agent_id, reminder.reminder_id, reminder.version)


def _parse_event(value: Any) -> Event:
    """``parse(Event, value)`` without its generic steps: this runs once per event."""
    try:
        return Event.__pydantic_validator__.validate_python(  # type: ignore[no-any-return]
            {} if value is None else value
        )
    except ValidationError as exc:
        raise InvalidInputError.from_pydantic(exc, message="Invalid event") from exc


def _ensure_json(value: Any, *, what: str, error: type[AOSError]) -> None:
    """Results and values are serialised by the SDK only when the batch ends, where a failure
    would fail every operation of the batch; find it here, in the operation that caused it."""
    try:
        STRICT_JSON.encode(value)
    except (TypeError, ValueError) as exc:
        raise error(f"{what} is not JSON: {exc}") from exc
