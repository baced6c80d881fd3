"""The agent's context as the JSON document the Durable entity stores, changed copy-on-write.

Why a document and not just ``AgentContext``: the entity runs up to hundreds of operations per batch,
and validating or dumping a 30 KB pydantic model per operation would cost ten times the SDK's own
per-operation overhead. So the stored dict (``raw``) is the source of truth: it is validated into an
``AgentContext`` once when a batch loads it (and lazily whenever typed access is wanted), typed
changes dump only the fields they touch, and the hot path (an event) writes its few JSON fields
directly. A document is never mutated: every change returns a new one, so a failed operation leaves
the previous document -- and therefore the entity state -- exactly as it was.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import json.encoder
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from aos.domain.conversation import MAX_QUEUED_TURNS, Conversation, TurnState
from aos.domain.escaping import truncate_escaped
from aos.domain.limits import Limits
from aos.domain.models import (
    AgentContext,
    AgentSpec,
    DecisionSummary,
    Event,
    EventSummary,
    format_timestamp,
    utc_now,
)
from aos.errors import AOSError, InvalidInputError, LimitExceededError

__all__ = [
    "ContextDocument",
    "StateSchemaError",
    "id_digest",
    "summarize_event",
    "truncate_escaped",
    "worst_case_state_bytes",
]

_USER_FIELDS = ("spec", "goals", "state", "reminders")
STRICT_JSON = json.JSONEncoder(allow_nan=False)
"""Encodes only what every JSON parser accepts (no NaN/Infinity). An encoder made once: passing
options to ``json.dumps`` builds a new encoder per call, which costs more than the encoding."""


def _not_json(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _strict_json_length() -> Callable[[Any], int]:
    """``len(STRICT_JSON.encode(value))``, faster: ``JSONEncoder.encode`` builds the C encoder
    anew on every call, which costs about as much as encoding a small event's data, so this builds
    it once (the encoder ``json.dumps`` uses, with ``allow_nan=False``). Without the C accelerator,
    the plain encoder."""
    make = getattr(json.encoder, "c_make_encoder", None)  # CPython's C accelerator
    if make is None:
        return lambda value: len(STRICT_JSON.encode(value))
    chunks = make(
        None, _not_json, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, False
    )
    return lambda value: len("".join(chunks(value, 0)))


strict_json_length = _strict_json_length()
DIGEST_LENGTH = 8


class StateSchemaError(AOSError):
    """Stored entity state does not match ``AgentContext`` (written by another version?)."""


def id_digest(identifier: str, namespace: str = "event") -> str:
    """An 8-character digest of an event or decision id for the de-duplication window.

    Ids may be 128 characters long; 1,000 of them verbatim would be four times the state budget.
    With 48 bits of BLAKE2b, the chance that a new id matches one of 1,000 remembered ones by
    accident is about 4e-12.
    """
    hasher = _HASHERS.get(namespace)
    if hasher is None:
        hasher = _HASHERS[namespace] = _hasher(namespace)
    hasher = hasher.copy()  # a hasher set up once: copying it costs less than its parameters
    hasher.update(identifier.encode())
    return binascii.b2a_base64(hasher.digest(), newline=False).translate(_URLSAFE).decode("ascii")


def _hasher(namespace: str) -> Any:
    return hashlib.blake2b(digest_size=6, person=namespace.encode())


_HASHERS = {"event": _hasher("event"), "decision": _hasher("decision")}
_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64's URL-safe alphabet


def summarize_event(event: Event, *, received_at: str, preview_bytes: int) -> dict[str, Any]:
    """The JSON of an ``EventSummary`` built directly (it is on the hot path); a unit test pins it
    to ``EventSummary.model_dump(mode="json")``."""
    data = event.data
    try:
        small = strict_json_length(data) <= preview_bytes  # ASCII-escaped: characters == bytes
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInputError(f"event data is not JSON: {exc}") from exc
    return {
        "event_id": event.event_id,
        "type": event.type,
        "source": event.source,
        "correlation_id": event.correlation_id,
        # An event the caller did not date was created as it arrived: reuse the formatted string.
        "created_at": (
            format_timestamp(event.created_at)
            if "created_at" in event.model_fields_set
            else received_at
        ),
        "received_at": received_at,
        "data": data if small else None,
        "data_truncated": not small,
    }


class ContextDocument:
    """An agent context as stored JSON (``raw``), with lazy typed access (``context``)."""

    __slots__ = ("_context", "_seen", "raw")

    def __init__(
        self,
        raw: dict[str, Any],
        *,
        context: AgentContext | None = None,
        seen: set[str] | None = None,
    ) -> None:
        self.raw = raw
        self._context = context
        self._seen = seen

    # ------------------------------------------------------------------------------ construction
    @classmethod
    def create(cls, spec: AgentSpec, limits: Limits) -> ContextDocument:
        """The context of a newly registered agent; refuses a spec beyond the user budget."""
        now = utc_now()
        document = cls.from_context(AgentContext(spec=spec, created_at=now, updated_at=now))
        document._check(limits, user_fields_changed=True)
        return document

    @classmethod
    def from_context(cls, context: AgentContext) -> ContextDocument:
        return cls(context.model_dump(mode="json"), context=context)

    @classmethod
    def load(cls, raw: Any) -> ContextDocument:
        """Validate stored state. Raises ``StateSchemaError`` rather than run on unknown data."""
        try:
            context = AgentContext.model_validate(raw)
        except ValidationError as exc:
            raise StateSchemaError(
                f"Stored agent state is not a valid AgentContext: {exc}"
            ) from exc
        return cls(raw, context=context)

    # ------------------------------------------------------------------------------ reading
    @property
    def context(self) -> AgentContext:
        if self._context is None:
            self._context = AgentContext.model_validate(self.raw)
        return self._context

    @property
    def agent_id(self) -> str:
        return str(self.raw["spec"]["agent_id"])

    @property
    def kind(self) -> str:
        return str(self.raw["spec"]["kind"])

    @property
    def events_handled(self) -> int:
        return int(self.raw["counters"]["events_handled"])

    def has_processed(self, digest: str) -> bool:
        return digest in self._seen_digests()

    def size_bytes(self) -> int:
        """Length of the state as the SDK serialises it (``json.dumps`` defaults)."""
        return len(json.dumps(self.raw))

    def user_bytes(self) -> int:
        # state written before reminders existed has no "reminders" key
        return sum(len(json.dumps(self.raw.get(name, []))) for name in _USER_FIELDS)

    def _seen_digests(self) -> set[str]:
        if self._seen is None:
            self._seen = set(_chunks(self.raw["recent_id_digests"]))
        return self._seen

    # ------------------------------------------------------------------------------ changing
    def replace(self, limits: Limits, **changes: Any) -> ContextDocument:
        """A typed change of top-level fields (rare operations: spec, goals, state, decisions).

        Only the changed fields are dumped. The result is checked against the user budget and the
        state cap, so a write that would break a bound is refused and changes nothing.
        """
        changes.setdefault("updated_at", utc_now())
        context = self.context.model_copy(update=changes)
        dumped = context.model_dump(mode="json", include=set(changes))
        raw = {**self.raw, **dumped}
        seen = None if "recent_id_digests" in changes else self._seen
        document = ContextDocument(raw, context=context, seen=seen)
        document._check(limits, user_fields_changed=any(n in changes for n in _USER_FIELDS))
        return document

    def _check(self, limits: Limits, *, user_fields_changed: bool) -> None:
        if user_fields_changed:
            used = self.user_bytes()
            if used > limits.user_state_bytes:
                raise LimitExceededError(
                    f"spec, goals and state would take {used} bytes; the limit is "
                    f"{limits.user_state_bytes} (AOS_USER_STATE_BYTES)"
                )
        size = self.size_bytes()
        if size > limits.max_state_bytes:
            raise LimitExceededError(
                f"entity state would be {size} bytes; the limit is {limits.max_state_bytes}"
            )

    def with_event(self, summary: dict[str, Any], digest: str, limits: Limits) -> ContextDocument:
        """The hot path: remember a handled event (window, last event, id digest, counter).

        Writes JSON directly and hands the digest set on to the new document (this one is being
        superseded; documents are otherwise never shared across operations).
        """
        raw = self.raw
        digests, evicted = _roll(raw["recent_id_digests"], digest, limits.processed_ids)
        counters = raw["counters"]
        window = raw["recent_events"]
        new_raw = dict(raw)
        new_raw["last_event"] = summary
        keep = max(0, len(window) + 1 - limits.recent_events)
        new_raw["recent_events"] = [*window[keep:], summary]
        new_raw["recent_id_digests"] = digests
        new_raw["counters"] = {**counters, "events_handled": counters["events_handled"] + 1}
        new_raw["updated_at"] = summary["received_at"]
        seen = self._seen if self._seen is not None else self._seen_digests()
        if len(evicted) == DIGEST_LENGTH:  # the usual case: one digest rolls out
            seen.discard(evicted)
        elif evicted:
            seen.difference_update(_chunks(evicted))
        seen.add(digest)
        return ContextDocument(new_raw, seen=seen)

    def with_duplicate(self) -> ContextDocument:
        counters = self.raw["counters"]
        new_raw = dict(self.raw)
        new_raw["counters"] = {**counters, "duplicates_ignored": counters["duplicates_ignored"] + 1}
        return ContextDocument(new_raw, seen=self._seen)

    def with_failure(self, failed_at: str) -> ContextDocument:
        """Count an event whose handler raised; nothing else changes (its id is not remembered,
        so the event applies if it is sent again)."""
        counters = self.raw["counters"]
        new_raw = dict(self.raw)
        new_raw["counters"] = {**counters, "events_failed": counters.get("events_failed", 0) + 1}
        new_raw["updated_at"] = failed_at
        return ContextDocument(new_raw, seen=self._seen)

    def remember(self, digest: str, limits: Limits) -> ContextDocument:
        """Remember an id that is not an event's (a turn's step) in the de-duplication window."""
        digests, _ = _roll(self.raw["recent_id_digests"], digest, limits.processed_ids)
        return self.replace(limits, recent_id_digests=digests)

    def with_decision(
        self, summary: DecisionSummary, digest: str, limits: Limits
    ) -> ContextDocument:
        context = self.context
        digests, _ = _roll(context.recent_id_digests, digest, limits.processed_ids)
        return self.replace(
            limits,
            recent_decisions=(*context.recent_decisions, summary)[-limits.recent_decisions :],
            recent_id_digests=digests,
            counters=context.counters.model_copy(
                update={"decisions_made": context.counters.decisions_made + 1}
            ),
        )


def _roll(digests: str, digest: str, capacity: int) -> tuple[str, str]:
    """Append ``digest`` to the window, keeping the newest ``capacity``; returns (window, evicted)."""
    keep = (capacity - 1) * DIGEST_LENGTH
    cut = max(0, len(digests) - keep)
    return digests[cut:] + digest, digests[:cut]


def _chunks(digests: str) -> list[str]:
    return [digests[i : i + DIGEST_LENGTH] for i in range(0, len(digests), DIGEST_LENGTH)]


def worst_case_state_bytes(limits: Limits) -> int:
    """The serialised size of the largest state ``limits`` allow: every window full of entries
    with every field at its maximum length, and the user budget spent. Used to refuse settings
    that could break ``max_state_bytes``, and by the tests to prove the default limits hold."""
    now = utc_now()
    long_id = "x" * 128
    text64 = "s" * 64
    preview = {"p": "d" * max(0, limits.event_preview_bytes - 9)}
    event = EventSummary(
        event_id=long_id,
        type="t" * 64,
        source=text64,
        correlation_id=text64,
        created_at=now,
        received_at=now,
        data=preview,
    )
    decision = DecisionSummary(
        decision_id=long_id,
        chosen=preview,
        score=0.123456789,
        rationale="r" * 300,
        decided_at=now,
    )
    spec = AgentSpec(agent_id="a" * 64, purpose="p")
    context = AgentContext(
        spec=spec,
        last_event=event,
        recent_events=(event,) * limits.recent_events,
        recent_decisions=(decision,) * limits.recent_decisions,
        recent_id_digests=id_digest("x") * limits.processed_ids,
        created_at=now,
        updated_at=now,
    )
    turns = TurnState(
        active=_LONGEST_TURN_ID,
        active_since=format_timestamp(now),
        active_deadline=format_timestamp(now),
        queued=(_LONGEST_TURN_ID,) * MAX_QUEUED_TURNS,
        completed=10**15,
        failed=10**15,
    )
    context = context.model_copy(update={"turns": turns})
    # the conversation window is trimmed to conversation_bytes as stored (Conversation)
    empty_conversation = len(json.dumps(Conversation().model_dump(mode="json")))
    dynamic = len(json.dumps(context.model_dump(mode="json")))
    dynamic += limits.conversation_bytes - empty_conversation
    empty_user = sum(len(json.dumps(_dump(getattr(context, n)))) for n in _USER_FIELDS)
    return dynamic - empty_user + limits.user_state_bytes


_LONGEST_TURN_ID = "turn-" + "0" * 32


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return [_dump(v) for v in value]
    return value
