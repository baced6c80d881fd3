"""The shapes of the HTTP API that clients share with the server: what each route accepts and
answers.

The routes validate bodies with these models and build answers with them, the OpenAPI document is
generated from them, and the Python client (``aos.client``) parses answers with them, so none of
the three can drift from what the routes really do. This module imports no Azure SDK, so that the
client can use it; the server-only parts (the history query's parsing) are in
``aos.api.schemas``, which re-exports everything here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

from aos.api.paths import DEFAULT_PAGE, MAX_HISTORY_PAGE, MAX_HISTORY_TYPES
from aos.domain.conversation import TurnState
from aos.domain.history import HISTORY_PREFIX, HistoryKind, HistoryQuery, HistoryRecord
from aos.domain.models import (
    AGENT_ID_PATTERN,
    EVENT_TYPE_PATTERN,
    AgentSpec,
    Counters,
    DecisionSummary,
    Event,
    EventId,
    EventSummary,
    EventType,
    Goal,
    JsonData,
    Reminder,
    ShortText,
    SpecChanges,
    SpecFields,
    Timestamp,
    change_set_schema,
    format_timestamp,
    full_match,
)
from aos.domain.turns import TurnStatus
from aos.domain.validation import parse
from aos.errors import InvalidInputError
from aos.ports.index import IndexEntry, decode_token, encode_token, invalid_token

__all__ = [
    "AgentDetail",
    "AgentList",
    "AgentPatch",
    "AgentResource",
    "AlignmentRequest",
    "AlignmentResponse",
    "BroadcastAccepted",
    "DeadLetterItem",
    "DeadLetterList",
    "EventAccepted",
    "EventIn",
    "FieldProblem",
    "GoalList",
    "Health",
    "HistoryFilter",
    "HistoryItem",
    "HistoryList",
    "LetterReplayed",
    "Problem",
    "PurgeJob",
    "RegisterAgent",
    "ReminderList",
    "ReplaceAgent",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegisterAgent(SpecFields):
    """``POST /api/agents``: a new agent."""

    model_config = _Body.model_config


class ReplaceAgent(RegisterAgent):
    """``PUT /api/agents/{agent_id}``: the whole spec (fields left out take their defaults)."""

    agent_id: Annotated[str, Field(pattern=AGENT_ID_PATTERN)] | None = Field(  # type: ignore[assignment]
        default=None, description="optional; must equal the id in the path"
    )


class AgentPatch(SpecChanges):
    """``PATCH /api/agents/{agent_id}``: the fields to change (at least one; none can be null)."""

    model_config = ConfigDict(json_schema_extra=change_set_schema)

    @model_validator(mode="after")
    def _something_to_change(self) -> AgentPatch:
        if not self.model_fields_set:
            raise ValueError(
                "give at least one of purpose, purpose_scope, success_criteria, adapter_name, "
                "subscriptions, requires_approval"
            )
        return self


class AgentResource(AgentSpec):
    """An agent as listed and as answered on registration: its spec and index status."""

    status: Literal["registering", "active", "deregistering"]
    registered_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_entry(cls, entry: IndexEntry) -> Self:
        return cls.model_validate(
            {
                **entry.spec.model_dump(),
                "status": entry.status.value,
                "registered_at": entry.registered_at,
                "updated_at": entry.updated_at,
            }
        )


class AgentDetail(AgentResource):
    """``GET /api/agents/{agent_id}``: the agent as listed and registered (``AgentResource``) and
    its context: goals, key/value state, the last and recent events and decisions, counters,
    active reminders."""

    goals: list[Goal]
    state: dict[str, JsonValue]
    last_event: EventSummary | None
    recent_events: list[EventSummary]
    recent_decisions: list[DecisionSummary]
    counters: Counters
    reminders: list[Reminder] = Field(
        default_factory=list, description="active reminders, with their next due times"
    )
    turns: TurnState = Field(
        default_factory=TurnState,
        description="the running turn, the turns waiting, the recent conversation",
    )
    created_at: Timestamp = Field(description="when this registration's context was created")
    last_active_at: Timestamp = Field(description="when the context last changed")

    @classmethod
    def of(cls, entry: IndexEntry, context: dict[str, Any]) -> Self:
        """The answer for an agent's index entry and its stored context (not its bookkeeping:
        the de-duplication window, the schema version)."""
        shown = {name: context[name] for name in _CONTEXT_FIELDS}
        shown["reminders"] = context.get("reminders", [])  # absent from older state
        shown["turns"] = context.get("turns") or {}
        resource = AgentResource.from_entry(entry).model_dump()
        return cls.model_validate({**resource, **shown, "last_active_at": context["updated_at"]})


_CONTEXT_FIELDS = (
    "goals", "state", "last_event", "recent_events", "recent_decisions", "counters", "created_at",
)  # fmt: skip


class AgentList(BaseModel):
    value: list[AgentResource]
    nextLink: str | None = Field(description="URL of the next page, or null on the last")  # noqa: N815


class ReminderList(BaseModel):
    """``GET /api/agents/{id}/reminders``: the active reminders, with their next due times."""

    value: list[Reminder]
    nextLink: str | None = None  # noqa: N815


class GoalList(BaseModel):
    value: list[Goal]
    nextLink: str | None = None  # noqa: N815


class EventIn(_Body):
    """An event as posted. ``event_id`` makes the POST idempotent; one is generated if left out."""

    event_id: EventId | None = None
    type: EventType
    data: JsonData = Field(default_factory=dict)
    source: ShortText | None = None
    correlation_id: ShortText | None = None
    created_at: Timestamp | None = None

    def to_event(self, *, agent_id: str | None, correlation_id: str) -> Event:
        """The event this body describes, for ``agent_id`` (``None``: a broadcast); the request's
        ``correlation_id`` unless the body names one."""
        fields = self.model_dump(exclude={"agent_id"}, exclude_none=True)
        fields.setdefault("correlation_id", correlation_id)
        return parse(Event, {**fields, "agent_id": agent_id}, what="event")


class EventAccepted(BaseModel):
    event_id: str
    agent_id: str
    status: Literal["queued"] = "queued"
    correlation_id: str | None = None
    links: dict[str, str]


class PurgeJob(BaseModel):
    """A purge of an agent's history and delivery receipts, running in the background."""

    agent_id: str
    status: Literal["purging", "done"]
    history_deleted: int = Field(description="history records deleted so far")
    receipts_deleted: int = Field(description="delivery receipts deleted so far")
    requested_at: str = Field(description="rows recorded up to this time are deleted")
    updated_at: str
    finished_at: str | None = None
    links: dict[str, str]


class BroadcastAccepted(BaseModel):
    event_id: str
    type: str
    status: Literal["queued"] = "queued"
    subscribers: int = Field(description="agents subscribed to the type when it was published")
    correlation_id: str | None = None


class MessageAccepted(BaseModel):
    """The answer to ``POST …/messages``: the turn the message starts, and where to watch it."""

    message_id: str
    turn_id: str
    agent_id: str
    status: Literal["queued"] = "queued"
    status_url: str = Field(description="GET it for the turn's status, reply and tool calls")


class ToolCallView(BaseModel):
    step: int
    id: str
    name: str
    result: Any = None
    error: str | None = None


class PendingToolCall(BaseModel):
    id: str
    name: str
    arguments: str = Field(description="as the model wrote them (JSON text)")


class TurnResource(BaseModel):
    """A turn: ``queued`` (waiting for its message, or for the agent's previous turn),
    ``running``, ``waiting_approval`` (``waiting_for`` is the tool call), ``completed`` (the
    ``reply``) or ``failed`` (the ``error``)."""

    turn_id: str
    agent_id: str
    status: TurnStatus
    source: Literal["message", "event", "handler"] | None = None
    prompt: str | None = None
    reply: str | None = None
    error: str | None = None
    waiting_for: PendingToolCall | None = None
    steps: int | None = None
    tool_calls: list[ToolCallView] | None = None
    usage: dict[str, int] | None = None
    model: str | None = Field(default=None, description="what answered: a deployment, a model")
    offline: bool | None = Field(
        default=None, description="true when the offline model answered (no model configured)"
    )
    created_at: str | None = None
    updated_at: str | None = None


class AlignmentRequest(_Body):
    """An action (text or any JSON) to score against the agent's purpose."""

    action: Annotated[JsonData, Field(json_schema_extra={"not": {"enum": [None, "", {}, []]}})]

    @model_validator(mode="after")
    def _present(self) -> AlignmentRequest:
        if self.action is None or self.action in ("", {}, []):
            raise ValueError("action must not be empty")
        return self


class AlignmentResponse(BaseModel):
    agent_id: str
    score: float = Field(ge=0.0, le=1.0)
    matched_terms: list[str]
    reasons: list[str]
    components: dict[str, float]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    storage: dict[str, str]
    version: str


class FieldProblem(BaseModel):
    loc: list[str | int]
    pointer: str
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the failing fields in ``errors``."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] | None = None
    correlation_id: str | None = None


class HistoryItem(BaseModel):
    """One archived record: a handled event (``payload`` is the event, ``result`` what its
    handler returned), a decision (``payload`` is the decision; ``event_id`` is the decision id)
    or a failure (``payload`` is the event its handler raised on, ``error`` why; the event was
    not applied and applies if sent again), or a send or publish (``payload`` is the event the
    agent emitted, ``event_id`` the id of the event it was handling)."""

    kind: HistoryKind
    event_id: str
    type: str
    recorded_at: str
    sequence: int = Field(description="position in the agent's history, 1 = first")
    payload: dict[str, JsonValue]
    result: JsonValue = Field(default=None, description="what the event's handler returned")
    error: dict[str, str] | None = Field(
        default=None, description="a failure's error: its type and message"
    )

    @classmethod
    def from_record(cls, record: HistoryRecord) -> Self:
        return cls.model_validate(
            {
                "kind": record.kind,
                "event_id": record.event_id,
                "type": record.type,
                "recorded_at": record.recorded_at,
                "sequence": record.sequence,
                "payload": record.payload_dict(),
                "result": record.result,
                "error": record.error,
            }
        )


class HistoryList(BaseModel):
    value: list[HistoryItem]
    nextLink: str | None = Field(description="URL of the next page, or null on the last")  # noqa: N815


class DeadLetterItem(BaseModel):
    """A message set aside: dead-lettered by the queue function (it can never be delivered as it
    is) or moved to the poison queue by the host (delivery failed ``maxDequeueCount`` times)."""

    id: str = Field(description="the letter's id, newest first in listings")
    queue: Literal["deadletter", "poison"]
    reason: str
    errors: list[dict[str, Any]] = Field(description="failing fields, as in problem+json")
    original: str = Field(description="the queue message's text, unchanged")
    message_id: str | None
    dequeue_count: int | None
    dead_lettered_at: str
    event_id: str | None = Field(description="from the original, if it carries an event")
    agent_id: str | None
    type: str | None


class DeadLetterList(BaseModel):
    value: list[DeadLetterItem]
    nextLink: str | None = Field(description="URL of the next page, or null on the last")  # noqa: N815


class LetterReplayed(BaseModel):
    """``POST …/replay``: the original went back to the events queue."""

    id: str
    status: Literal["replayed"] = "replayed"
    event_id: str | None = Field(description="the replayed event's id, if the original has one")


def _split_types(value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.strip() for t in (value or "").split(",") if t.strip()))


class HistoryFilter(BaseModel):
    """The query parameters of ``GET /api/agents/{agent_id}/history``. Other parameters (such as
    Azure's ``code`` function key) are ignored."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_HISTORY_PAGE)
    continuation: str | None = None
    type: str | None = Field(
        default=None,
        description=f"only these types, at most {MAX_HISTORY_TYPES} (comma-separated; decisions "
        "have 'decision')",
    )
    kind: HistoryKind | None = None
    since: Timestamp | None = Field(
        default=None,
        validation_alias=AliasChoices("since", "from"),
        description="recorded at or after (ISO 8601); also accepted as 'from'",
    )
    until: Timestamp | None = Field(
        default=None,
        validation_alias=AliasChoices("until", "to"),
        description="recorded before (ISO 8601); also accepted as 'to'",
    )

    @field_validator("type")
    @classmethod
    def _types(cls, value: str | None) -> str | None:
        names = _split_types(value)
        for name in names:
            if not full_match(EVENT_TYPE_PATTERN, name):
                raise ValueError(f"{name!r} is not an event type")
        if len(names) > MAX_HISTORY_TYPES:
            raise ValueError(f"give at most {MAX_HISTORY_TYPES} types")
        return value

    @model_validator(mode="after")
    def _valid(self) -> HistoryFilter:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be later than since")
        return self

    @property
    def types(self) -> tuple[str, ...]:
        return _split_types(self.type)

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> HistoryFilter:
        """From query parameters; ``InvalidInputError`` naming each bad ``query/<name>``."""
        try:
            return cls.model_validate(dict(params))
        except ValidationError as exc:
            raise InvalidInputError.from_pydantic(
                exc, prefix=("query",), message="The query is not valid"
            ) from exc

    def to_query(self) -> HistoryQuery:
        return HistoryQuery(
            limit=self.limit,
            continuation=_history_position(self.continuation),
            kind=self.kind,
            types=self.types,
            since=format_timestamp(self.since) if self.since else None,
            until=format_timestamp(self.until) if self.until else None,
        )

    def next_page(self, continuation: str) -> dict[str, Any]:
        """The query parameters of the page after the one that ended at ``continuation``."""
        params = self.model_dump(mode="json", exclude={"continuation"}, exclude_none=True)
        return {**params, "continuation": encode_token(continuation)}


_HISTORY_POSITION = re.escape(HISTORY_PREFIX) + r"[0-9]{17}\|[0-9]{15}"


"""A history row key (``aos.domain.history.history_row_key``): all a history token may carry."""


def _history_position(token: str | None) -> str | None:
    """The row key a continuation token stands for."""
    if token is None:
        return None
    position = decode_token(token)
    if not isinstance(position, str) or not full_match(_HISTORY_POSITION, position):
        raise invalid_token("not a position in the history")
    return position
