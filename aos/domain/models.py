"""The agent's data: what an agent is (``AgentSpec``), wants (``Goal``), receives (``Event``), decides
(``Decision``), and the whole persisted context that is the Durable entity's state (``AgentContext``).

State models are frozen and hold tuples, so an operation builds a new context instead of mutating the
one the SDK handed it: the SDK keeps mutations made before an exception, and we never want a failed
operation to leave half a change behind. Input models forbid unknown fields, so a typo in a request
is a 400 naming the field rather than a silently ignored value.

Timestamps are UTC and always serialised with microseconds (``2026-01-02T03:04:05.000006Z``): a fixed
width keeps the entity state's size stable and makes the strings sort in time order.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from aos.domain.conversation import TurnState
from aos.errors import FieldError, InvalidInputError

__all__ = [
    "AGENT_ID_PATTERN",
    "MAX_INTERVAL_SECONDS",
    "AgentContext",
    "AgentId",
    "AgentSpec",
    "Counters",
    "Decision",
    "DecisionRequest",
    "DecisionSummary",
    "Event",
    "EventId",
    "EventSummary",
    "EventType",
    "Goal",
    "GoalChanges",
    "GoalCreate",
    "GoalId",
    "GoalRef",
    "GoalStatus",
    "GoalUpdate",
    "Reminder",
    "ReminderId",
    "SpecUpdate",
    "StateDelete",
    "StateWrite",
    "Timestamp",
    "change_set_schema",
    "format_timestamp",
    "full_match",
    "new_id",
    "not_null",
    "utc_now",
]

T = TypeVar("T")

AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$"
KIND_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"


def full_match(pattern: str, value: str) -> bool:
    """Whether all of ``value`` matches ``pattern``. The id patterns end in ``$``, which is what
    JSON Schema and pydantic mean by "end", but Python's ``re.match`` lets ``$`` match before a
    trailing newline (``"abc\\n"`` would pass): every Python-side check goes through here."""
    return re.fullmatch(pattern, value) is not None


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh identifier: 32 hex characters, valid as agent, goal and event id."""
    return uuid.uuid4().hex


def format_timestamp(value: datetime) -> str:
    """Fixed-width UTC ISO 8601 with microseconds and ``Z`` (``isoformat`` is several times faster
    than ``strftime``, and this runs twice per event)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def _as_utc(value: datetime) -> datetime:
    # A timestamp without an offset is taken as UTC, as Azure Storage does. Near the ends of the
    # calendar (0001-01-01T00:00:00+01:00) the UTC instant is not a datetime: a ValueError, so
    # that pydantic reports the field (an OverflowError would escape validation as a 500).
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time in UTC is outside years 1-9999") from None


Timestamp = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
AgentId = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
GoalId = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
EventId = Annotated[str, StringConstraints(pattern=EVENT_ID_PATTERN)]
EventType = Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN)]
KindName = Annotated[str, StringConstraints(pattern=KIND_PATTERN)]


def _escaped_within(limit: int) -> Any:
    """A string whose JSON-escaped form (as the entity state stores it, non-ASCII escaped) is at
    most ``limit`` bytes: 64 emoji are 64 characters but 768 bytes of state."""

    def check(value: str) -> str:
        if value.isascii() and value.isprintable():  # the usual label: no escapes but these
            size = len(value) + value.count('"') + value.count("\\")
        else:
            size = len(json.dumps(value)) - 2
        if size > limit:
            raise ValueError(
                f"at most {limit} bytes as stored JSON (this is {size}; a non-ASCII character "
                "takes 6 or 12)"
            )
        return value

    return AfterValidator(check)


ShortText = Annotated[str, StringConstraints(max_length=64), _escaped_within(64)]
"""Short labels kept in every window entry of the entity state: bounded in stored bytes."""
Purpose = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Scope = Annotated[str, StringConstraints(max_length=2000)]
Criterion = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Description = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
JsonData = Annotated[Any, Field(json_schema_extra={"description": "any JSON value"})]
"""JSON arriving from a parsed body or message. Not validated value by value (pydantic's
``JsonValue`` costs more than the rest of an event operation); serialising it proves it is JSON."""
Subscription = Annotated[
    str, StringConstraints(pattern=r"^(\*|" + EVENT_TYPE_PATTERN[1:-1] + r")$")
]


class _Input(BaseModel):
    """What callers send: unknown fields are errors. Models build their validators when first
    used (``defer_build``), not when ``function_app`` is imported: a cold start pays only for the
    ones its first requests need."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class _State(BaseModel):
    """What the entity stores: immutable, unknown fields are errors (a schema change bumps
    ``AgentContext.schema_version``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def not_null(value: T) -> T:
    """A field validator for change sets whose fields are optional but not nullable: an explicit
    null is refused naming the field (a null description would otherwise fail only later, inside
    the entity, when the changed goal is validated)."""
    if value is None:
        raise ValueError("cannot be null; leave the field out to keep its value")
    return value


def change_set_schema(schema: dict[str, Any]) -> None:
    """JSON Schema of a change set (PATCH): at least one field, and no ``default: null`` on
    fields that cannot be null (a field left out keeps its value; it has no default)."""
    schema["minProperties"] = 1
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


# --------------------------------------------------------------------------------------- the spec
AdapterName = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
Criteria = Annotated[tuple[Criterion, ...], Field(max_length=20)]
Subscriptions = Annotated[tuple[Subscription, ...], Field(max_length=32)]
Progress = Annotated[float, Field(ge=0.0, le=1.0)]
ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ApprovalList = Annotated[
    tuple[ToolName, ...],
    Field(
        max_length=32,
        description="tools whose calls wait for someone's approval before they run (built-in "
        "ones such as send or publish, or the kind's own)",
    ),
]


class SpecFields(BaseModel):
    """The fields of an agent's spec, declared once: the stored ``AgentSpec`` and the bodies that
    register an agent (``aos.api.schemas.RegisterAgent``) are this with their own configuration."""

    agent_id: AgentId
    kind: KindName = "generic"
    purpose: Purpose
    purpose_scope: Scope = ""
    success_criteria: Criteria = ()
    adapter_name: AdapterName = "default"
    subscriptions: Subscriptions = ()
    requires_approval: ApprovalList = ()

    _dedupe = field_validator("success_criteria", "subscriptions", "requires_approval")(_unique)


class AgentSpec(SpecFields, _State):
    """Who the agent is and what it is for. Set by ``configure``; everything else is derived."""

    model_config = _State.model_config


class SpecChanges(_Input):
    """The spec fields a change may set (each optional, none nullable): PATCH's body
    (``aos.api.schemas.AgentPatch``) and ``SpecUpdate``, the ``configure`` input."""

    purpose: Purpose | SkipJsonSchema[None] = None
    purpose_scope: Scope | SkipJsonSchema[None] = None
    # Bounds inside the Annotated: on the union pydantic would apply them to None (a TypeError).
    success_criteria: Criteria | SkipJsonSchema[None] = None
    adapter_name: AdapterName | SkipJsonSchema[None] = None
    subscriptions: Subscriptions | SkipJsonSchema[None] = None
    requires_approval: ApprovalList | SkipJsonSchema[None] = None

    _not_null = field_validator(
        "purpose",
        "purpose_scope",
        "success_criteria",
        "adapter_name",
        "subscriptions",
        "requires_approval",
    )(not_null)


class SpecUpdate(SpecChanges):
    """Input of the ``configure`` operation and of register/PATCH.

    Fields left out keep their current value, unless ``replace`` is true (PUT), in which case they
    take their defaults. Creating an agent needs ``purpose``. ``agent_id`` may be given (a whole
    spec as input); it must then be the entity's key.
    """

    agent_id: AgentId | None = None
    kind: KindName | None = None
    replace: bool = False

    def apply_to(self, agent_id: str, current: AgentSpec | None) -> AgentSpec:
        """The spec after this update. Raises ``InvalidInputError`` if it is incomplete (a new
        agent without a purpose)."""
        if self.agent_id not in (None, agent_id):
            raise InvalidInputError(
                f"agent_id {self.agent_id!r} is not this agent ({agent_id!r})",
                [FieldError(("agent_id",), "must be the entity key", "value_error")],
            )
        changes = self.model_dump(exclude_unset=True, exclude={"replace", "agent_id"})
        base = {"agent_id": agent_id} if current is None or self.replace else current.model_dump()
        try:
            return AgentSpec.model_validate({**base, **changes})
        except ValidationError as exc:
            raise InvalidInputError.from_pydantic(exc, message="Invalid agent spec") from exc


# --------------------------------------------------------------------------------------- goals
class GoalStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    ACHIEVED = "achieved"
    ABANDONED = "abandoned"


Metadata = Annotated[dict[str, JsonValue], Field(max_length=16)]


class Goal(_State):
    id: GoalId
    description: Description
    status: GoalStatus = GoalStatus.PENDING
    progress: Progress = 0.0
    created_at: Timestamp
    updated_at: Timestamp
    metadata: Metadata = Field(default_factory=dict)


class GoalCreate(_Input):
    """Input of ``add_goal``. The id is generated when not given; giving one makes retries safe."""

    id: GoalId | None = None
    description: Description
    status: GoalStatus = GoalStatus.PENDING
    progress: Progress = 0.0
    metadata: Metadata = Field(default_factory=dict)


class GoalChanges(_Input):
    """The fields of a goal to change (at least one); the body of PATCH on a goal. A field left
    out keeps its value; none can be set to null (the schema says so, the validator enforces it)."""

    model_config = ConfigDict(json_schema_extra=change_set_schema)

    description: Description | SkipJsonSchema[None] = None
    status: GoalStatus | SkipJsonSchema[None] = None
    progress: Progress | SkipJsonSchema[None] = None
    metadata: Metadata | SkipJsonSchema[None] = None

    _not_null = field_validator("description", "status", "progress", "metadata")(not_null)

    @model_validator(mode="after")
    def _something_to_change(self) -> GoalChanges:
        if not self.model_fields_set - {"id"}:
            raise ValueError("give at least one of description, status, progress, metadata")
        return self

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set - {"id"}}


class GoalUpdate(GoalChanges):
    """Input of ``update_goal``: the goal's id (``id``, or ``goal_id``) and the fields to change."""

    id: GoalId = Field(validation_alias=AliasChoices("id", "goal_id"))


# --------------------------------------------------------------------------------------- events
class Event(_Input):
    """The envelope every event travels in, from HTTP through the queue to the entity.

    ``event_id`` is what makes delivery idempotent: the entity applies each id once.
    """

    event_id: EventId = Field(default_factory=new_id)
    agent_id: AgentId | None = None
    type: EventType
    data: JsonData = Field(default_factory=dict)
    source: ShortText | None = None
    correlation_id: ShortText | None = None
    created_at: Timestamp = Field(default_factory=utc_now)
    hops: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="how many agents passed this event on (0: sent by a client); delivery "
        "dead-letters an event past AOS_MAX_HOPS",
    )


class EventSummary(_State):
    """An event as the entity remembers it in its bounded window. ``data`` is kept only while it is
    small (see ``Limits.event_preview_bytes``); the full event is in the history archive."""

    event_id: EventId
    type: EventType
    source: ShortText | None = None
    correlation_id: ShortText | None = None
    created_at: Timestamp
    received_at: Timestamp
    data: JsonValue = None
    data_truncated: bool = False


# --------------------------------------------------------------------------------------- decisions
class DecisionRequest(_Input):
    """Input of ``decide``: a situation and the options to choose from.

    Options are actions (text or JSON objects); each is scored against the agent's purpose.
    ``decision_id`` makes a retried request return the same recorded decision.
    """

    decision_id: EventId = Field(default_factory=new_id)
    context: dict[str, JsonValue] = Field(default_factory=dict, max_length=32)
    options: list[JsonValue] = Field(min_length=1, max_length=20)


class Decision(_State):
    decision_id: EventId
    context: dict[str, JsonValue]
    options: tuple[JsonValue, ...]
    scores: tuple[float, ...]
    chosen_index: int
    chosen: JsonValue
    rationale: str
    decided_at: Timestamp
    sequence: int


class DecisionSummary(_State):
    """A decision as the entity remembers it in its bounded window."""

    decision_id: EventId
    chosen: JsonValue = None
    score: float
    rationale: Annotated[str, StringConstraints(max_length=300)]
    decided_at: Timestamp


# --------------------------------------------------------------------------------------- context
class Counters(_State):
    events_handled: int = 0
    duplicates_ignored: int = 0
    decisions_made: int = 0
    events_failed: int = 0
    """Events whose handler raised: recorded in history as ``failure`` records, not applied, and
    applied if the same ``event_id`` arrives again (after a fix)."""


ReminderId = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
MAX_INTERVAL_SECONDS = 10 * 366 * 24 * 3600
"""Ten years: a reminder's interval (and delay) longer than that is refused."""


class Reminder(_State):
    """An active reminder, as the entity state keeps it (and ``GET …/reminders`` lists it)."""

    reminder_id: ReminderId
    type: EventType
    data: JsonData = None
    due: Timestamp = Field(description="when it fires next")
    every_seconds: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_SECONDS)
    version: EventId = Field(description="changes whenever the reminder is set again")


class AgentContext(_State):
    """The Durable entity's state: everything an agent is and remembers, bounded in size.

    ``recent_id_digests`` is the de-duplication window: the 8-character digests of the most recent
    event and decision ids, concatenated oldest first (one string is smaller in JSON and cheaper to
    roll forward than a list). Windows keep the newest entries last.
    """

    schema_version: Literal[1] = 1
    spec: AgentSpec
    goals: tuple[Goal, ...] = ()
    state: dict[str, JsonValue] = Field(default_factory=dict)
    last_event: EventSummary | None = None
    recent_events: tuple[EventSummary, ...] = ()
    recent_decisions: tuple[DecisionSummary, ...] = ()
    counters: Counters = Counters()
    reminders: tuple[Reminder, ...] = ()
    """Active reminders (``aos.domain.reminders``), counted in the user budget."""
    turns: TurnState = TurnState()
    """The running and waiting turns and the recent conversation (``aos.domain.turns``)."""
    recent_id_digests: Annotated[str, StringConstraints(pattern=r"^(?:[A-Za-z0-9_-]{8})*$")] = ""
    created_at: Timestamp
    updated_at: Timestamp

    def goal(self, goal_id: str) -> Goal | None:
        return next((g for g in self.goals if g.id == goal_id), None)

    def reminder(self, reminder_id: str) -> Reminder | None:
        return next((r for r in self.reminders if r.reminder_id == reminder_id), None)


# --------------------------------------------------------------------------------------- state ops
StateKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class StateWrite(_Input):
    """Input of ``update_state``."""

    key: StateKey
    value: JsonValue


class StateDelete(_Input):
    """Input of ``delete_state``."""

    key: StateKey


class GoalRef(_Input):
    """Input of ``remove_goal``: ``{"id": ...}``, ``{"goal_id": ...}`` or the id alone."""

    id: GoalId = Field(validation_alias=AliasChoices("id", "goal_id"))
