"""The client without I/O: each route as a ``Call`` (request plus how to read its answer), the
problem+json to exception table, and the retry policy. ``AosClient`` and ``AsyncAosClient`` only
send calls, so the two cannot disagree about a route."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from aos.api.schemas import (
    AgentDetail,
    AgentList,
    AgentPatch,
    AgentResource,
    AlignmentRequest,
    AlignmentResponse,
    BroadcastAccepted,
    EventAccepted,
    EventIn,
    GoalList,
    Health,
    HistoryItem,
    HistoryList,
    MessageAccepted,
    PurgeJob,
    RegisterAgent,
    ReminderList,
    ReplaceAgent,
    TurnResource,
)
from aos.client._models import DeadLetterItem, DeadLetterList, DeadLetterReplayed
from aos.domain.history import HistoryKind
from aos.domain.models import Goal, GoalChanges, GoalCreate, Reminder, new_id
from aos.domain.reminders import ReminderRequest
from aos.domain.turns import ApprovalRequest, MessageRequest, TurnStatus
from aos.errors import (
    AOSError,
    BusyError,
    ConflictError,
    FieldError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceError,
    StorageError,
    UnsupportedMediaTypeError,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

RecordKind = HistoryKind
"""What a history record is (``aos.domain.history.HistoryKind``)."""

Body = BaseModel | Mapping[str, Any]
"""A request body: the route's model, or a mapping validated with it before it is sent."""

PROBLEM_PREFIX = "urn:aos:problem:"

# problem type slug -> class; the server's table is aos.api.problems (the inverse direction)
PROBLEM_TYPES: dict[str, type[AOSError]] = {
    "invalid-request": InvalidInputError,
    "payload-too-large": PayloadTooLargeError,
    "unsupported-media-type": UnsupportedMediaTypeError,
    "not-found": NotFoundError,
    "conflict": ConflictError,
    "limit-exceeded": LimitExceededError,
    "busy": BusyError,
    "storage-unavailable": StorageError,
}
# answers without a problem type of AOS (a proxy, a host without the route)
_BY_STATUS: dict[int, type[AOSError]] = {
    400: InvalidInputError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
}
RETRY_STATUSES = frozenset({429, 503})

SETTLED: frozenset[TurnStatus] = frozenset({"completed", "failed", "waiting_approval"})
"""Turn statuses ``ask`` stops at: the turn has an answer, or needs a person's approval."""
UNKNOWN_TURN_GRACE = 15.0
"""Seconds a turn just accepted may still be unknown (404): its message is on its way to the
agent through the events queue."""


class TurnTimeoutError(AOSError, TimeoutError):
    """(``aos.client``) A turn did not complete, fail or wait for an approval in time. It goes on:
    ``get_turn`` it later. ``turn`` is what was last seen of it (None if it was never seen)."""

    def __init__(
        self, agent_id: str, turn_id: str, timeout: float, turn: TurnResource | None
    ) -> None:
        seen = f"still {turn.status}" if turn is not None else "not yet known to the agent"
        super().__init__(
            f"Turn {turn_id} of agent {agent_id!r} is {seen} after {timeout:g} s; "
            f"it goes on: get it later (`aos turns show {agent_id} {turn_id}`)"
        )
        self.agent_id = agent_id
        self.turn_id = turn_id
        self.turn = turn


@dataclass(slots=True)
class TurnWait:
    """The bookkeeping of waiting for a turn, without the I/O or the clock's source (both clients
    poll with it): when an unknown turn stops being "not yet", and when to give up."""

    agent_id: str
    turn_id: str
    timeout: float
    started: float
    grace: float = UNKNOWN_TURN_GRACE
    last: TurnResource | None = None

    def seen(self, turn: TurnResource) -> bool:
        """True when ``turn`` is settled (return it)."""
        self.last = turn
        return turn.status in SETTLED

    def unknown(self, error: NotFoundError, now: float) -> None:
        """A 404: still "not yet" while the turn is young and was never seen, else raised."""
        if self.last is not None or now - self.started >= self.grace:
            raise error

    def pause(self, now: float, poll: float) -> float:
        """Seconds to sleep before asking again; raises ``TurnTimeoutError`` when time is up."""
        left = self.started + self.timeout - now
        if left <= 0:
            raise TurnTimeoutError(self.agent_id, self.turn_id, self.timeout, self.last)
        return min(max(poll, 0.0), left)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_link: str | None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to read a successful answer."""

    method: str
    url: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, str] | None = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    answers: frozenset[int] = frozenset()
    """Error statuses whose body is still the answer (health's 503)."""
    retry: bool = True

    def next_page(self, url: str) -> Call[T]:
        return replace(self, url=url, params=None)

    def result(self, response: httpx.Response) -> T:
        if response.is_success or response.status_code in self.answers:
            try:
                return self.read(response)
            except (ValueError, ValidationError) as exc:
                error = ServiceError(
                    f"{self.method} {response.url} answered {response.status_code} with a body "
                    f"this client does not understand: {exc}"
                )
                error.status = response.status_code
                raise error from exc
        raise error_from(response)


@dataclass(frozen=True, slots=True)
class Retry:
    """How 429 and 503 answers are retried: up to ``attempts`` tries in all, waiting what the
    service's ``Retry-After`` says or else ``backoff`` seconds doubled on each try, never more
    than ``max_delay``. ``Retry(attempts=1)`` never retries."""

    attempts: int = 4
    backoff: float = 0.5
    max_delay: float = 30.0

    def delay(self, call: Call[Any], response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before trying again after ``attempt`` (1 = the first try), or None."""
        if not call.retry or response.status_code not in RETRY_STATUSES:
            return None
        if attempt >= self.attempts:
            return None
        wait = retry_after(response.headers.get("retry-after"))
        if wait is None:
            wait = self.backoff * 2 ** (attempt - 1)
        return min(max(wait, 0.0), self.max_delay)


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def error_from(response: httpx.Response) -> AOSError:
    """The exception for an error answer: by problem type, else by status (a host's own 404 for a
    route it does not have), else ServiceError."""
    problem: dict[str, Any] | None = None
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("type"), str):
            problem = body
    except ValueError:
        pass
    status = response.status_code
    cls: type[AOSError] = ServiceError
    message = f"{response.request.method} {response.url.path} answered {status}"
    if problem is not None:
        slug = str(problem["type"]).removeprefix(PROBLEM_PREFIX)
        cls = PROBLEM_TYPES.get(slug) or _BY_STATUS.get(status, ServiceError)
        message = str(problem.get("detail") or problem.get("title") or message)
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
    if cls is ServiceError and status in (401, 403):
        message += ": the function key is missing or not valid (set --key or AOS_FUNCTION_KEY)"
    if issubclass(cls, InvalidInputError):
        error: AOSError = cls(message, _field_errors(problem))
    else:
        error = cls(message)
    error.status = status
    error.problem = problem
    return error


def _field_errors(problem: Mapping[str, Any] | None) -> list[FieldError]:
    errors = (problem or {}).get("errors") or []
    return [
        FieldError(tuple(e.get("loc", ())), str(e.get("msg", "")), str(e.get("type", "")))
        for e in errors
        if isinstance(e, dict)
    ]


def unreachable(base_url: str, exc: httpx.TransportError) -> ServiceError:
    return ServiceError(f"could not reach AOS at {base_url}: {exc or type(exc).__name__}")


# ------------------------------------------------------------------------------------ readers
def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _nothing(response: httpx.Response) -> None:
    return None


def _json(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


def _page(
    model: type[AgentList]
    | type[GoalList]
    | type[HistoryList]
    | type[DeadLetterList]
    | type[ReminderList],
) -> Callable[[httpx.Response], Page[Any]]:
    def read(response: httpx.Response) -> Page[Any]:
        page = model.model_validate_json(response.content)
        return Page(list(page.value), page.nextLink)

    return read


def _body(model: type[BaseModel], value: Body) -> dict[str, Any]:
    """The JSON of ``value`` as ``model`` (the route's own model), validated here so that a bad
    field fails before anything is sent, with the same ``errors`` the service would give."""
    if isinstance(value, model):
        validated = value
    else:
        raw = value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value
        try:
            validated = model.model_validate(dict(raw))
        except ValidationError as exc:
            raise InvalidInputError.from_pydantic(
                exc, prefix=("body",), message="The request is not valid"
            ) from exc
    body: dict[str, Any] = validated.model_dump(mode="json", exclude_unset=True)
    return body


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _params(**values: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(value)
        out[name] = str(value)
    return out


def _correlation(correlation_id: str | None) -> dict[str, str]:
    return {"x-correlation-id": correlation_id} if correlation_id else {}


def _dead_letters(poison: bool) -> str:
    return "/api/poison" if poison else "/api/deadletters"


# ------------------------------------------------------------------------------------ routes
def register_agent(agent: Body) -> Call[AgentResource]:
    return Call("POST", "/api/agents", _model(AgentResource), json=_body(RegisterAgent, agent))


def put_agent(agent_id: str, agent: Body) -> Call[AgentResource]:
    url = f"/api/agents/{_segment(agent_id)}"
    return Call("PUT", url, _model(AgentResource), json=_body(ReplaceAgent, agent))


def get_agent(agent_id: str) -> Call[AgentDetail]:
    return Call("GET", f"/api/agents/{_segment(agent_id)}", _model(AgentDetail))


def list_agents(page_size: int | None) -> Call[Page[AgentResource]]:
    return Call("GET", "/api/agents", _page(AgentList), params=_params(limit=page_size))


def update_agent(agent_id: str, changes: Body) -> Call[AgentResource]:
    url = f"/api/agents/{_segment(agent_id)}"
    return Call("PATCH", url, _model(AgentResource), json=_body(AgentPatch, changes))


def delete_agent(agent_id: str, purge: bool) -> Call[None]:
    params = _params(purge=True) if purge else None
    return Call("DELETE", f"/api/agents/{_segment(agent_id)}", _nothing, params=params)


def get_purge(agent_id: str) -> Call[PurgeJob]:
    return Call("GET", f"/api/agents/{_segment(agent_id)}/purge", _model(PurgeJob))


def list_goals(agent_id: str) -> Call[Page[Goal]]:
    return Call("GET", f"/api/agents/{_segment(agent_id)}/goals", _page(GoalList))


def add_goal(agent_id: str, goal: Body) -> Call[Goal]:
    url = f"/api/agents/{_segment(agent_id)}/goals"
    return Call("POST", url, _model(Goal), json=_body(GoalCreate, goal))


def get_goal(agent_id: str, goal_id: str) -> Call[Goal]:
    return Call("GET", f"/api/agents/{_segment(agent_id)}/goals/{_segment(goal_id)}", _model(Goal))


def update_goal(agent_id: str, goal_id: str, changes: Body) -> Call[Goal]:
    url = f"/api/agents/{_segment(agent_id)}/goals/{_segment(goal_id)}"
    return Call("PATCH", url, _model(Goal), json=_body(GoalChanges, changes))


def remove_goal(agent_id: str, goal_id: str) -> Call[None]:
    url = f"/api/agents/{_segment(agent_id)}/goals/{_segment(goal_id)}"
    return Call("DELETE", url, _nothing)


def list_reminders(agent_id: str) -> Call[Page[Reminder]]:
    return Call("GET", f"/api/agents/{_segment(agent_id)}/reminders", _page(ReminderList))


def set_reminder(agent_id: str, reminder_id: str, reminder: Body) -> Call[Reminder]:
    url = f"/api/agents/{_segment(agent_id)}/reminders/{_segment(reminder_id)}"
    return Call("PUT", url, _model(Reminder), json=_body(ReminderRequest, reminder))


def cancel_reminder(agent_id: str, reminder_id: str) -> Call[None]:
    url = f"/api/agents/{_segment(agent_id)}/reminders/{_segment(reminder_id)}"
    return Call("DELETE", url, _nothing)


def send_message(agent_id: str, content: str, message_id: str | None) -> Call[MessageAccepted]:
    # the client makes the message id when none is given, so a retried POST is the same turn
    body = _body(
        MessageRequest,
        {"content": content, "message_id": new_id() if message_id is None else message_id},
    )
    url = f"/api/agents/{_segment(agent_id)}/messages"
    return Call("POST", url, _model(MessageAccepted), json=body)


def get_turn(agent_id: str, turn_id: str) -> Call[TurnResource]:
    url = f"/api/agents/{_segment(agent_id)}/turns/{_segment(turn_id)}"
    return Call("GET", url, _model(TurnResource))


def approve_turn(
    agent_id: str, turn_id: str, approve: bool, reason: str | None
) -> Call[TurnResource]:
    fields: dict[str, Any] = {"approve": approve}
    if reason is not None:
        fields["reason"] = reason
    url = f"/api/agents/{_segment(agent_id)}/turns/{_segment(turn_id)}/approval"
    return Call("POST", url, _model(TurnResource), json=_body(ApprovalRequest, fields))


def _event(event: Body) -> dict[str, Any]:
    """The event's JSON with an ``event_id``: made here when the caller gives none, so that a
    retried POST (after a 503, or a broadcast queued for only some subscribers) is the same
    event, which agents apply once."""
    body = _body(EventIn, event)
    body.setdefault("event_id", new_id())
    return body


def send_event(agent_id: str, event: Body, correlation_id: str | None) -> Call[EventAccepted]:
    url = f"/api/agents/{_segment(agent_id)}/events"
    headers = _correlation(correlation_id)
    return Call("POST", url, _model(EventAccepted), json=_event(event), headers=headers)


def publish_event(event: Body, correlation_id: str | None) -> Call[BroadcastAccepted]:
    headers = _correlation(correlation_id)
    body = _event(event)
    return Call("POST", "/api/events", _model(BroadcastAccepted), json=body, headers=headers)


def list_history(
    agent_id: str,
    *,
    page_size: int | None,
    types: str | Sequence[str] | None,
    kind: str | None,
    since: datetime | str | None,
    until: datetime | str | None,
) -> Call[Page[HistoryItem]]:
    params = _params(limit=page_size, type=types, kind=kind, since=since, until=until)
    url = f"/api/agents/{_segment(agent_id)}/history"
    return Call("GET", url, _page(HistoryList), params=params)


def evaluate_alignment(agent_id: str, action: Any) -> Call[AlignmentResponse]:
    url = f"/api/agents/{_segment(agent_id)}/alignment"
    body = _body(AlignmentRequest, {"action": action})
    return Call("POST", url, _model(AlignmentResponse), json=body)


def health() -> Call[Health]:
    # 503 is an answer here (storage unreachable: status "degraded"), not a reason to retry
    return Call("GET", "/api/health", _model(Health), answers=frozenset({503}), retry=False)


def openapi() -> Call[dict[str, Any]]:
    return Call("GET", "/api/openapi.json", _json)


def list_dead_letters(poison: bool, page_size: int | None) -> Call[Page[DeadLetterItem]]:
    return Call(
        "GET", _dead_letters(poison), _page(DeadLetterList), params=_params(limit=page_size)
    )


def get_dead_letter(letter_id: str, poison: bool) -> Call[DeadLetterItem]:
    url = f"{_dead_letters(poison)}/{_segment(letter_id)}"
    return Call("GET", url, _model(DeadLetterItem))


def replay_dead_letter(letter_id: str, poison: bool) -> Call[DeadLetterReplayed]:
    url = f"{_dead_letters(poison)}/{_segment(letter_id)}/replay"
    return Call("POST", url, _model(DeadLetterReplayed))
