"""The HTTP API: its handlers and, at the end, ``OPERATIONS``, the table of every route's method,
handler, body and answer models, and query parameters, by reference.

Handlers parse and validate (``aos.api.requests``), call the services, and shape the answer with
the API models (``aos.api.schemas``); every error becomes problem+json through one table
(``aos.api.problems``). The OpenAPI document (``aos.api.openapi``) is built from ``OPERATIONS``.
This module is imported on the first request, not when the app is indexed (which needs only
``aos.api.paths``), to keep cold starts short.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from aos.api.operations import ApiOperation, Call, QueryParam, Services
from aos.api.paths import DEFAULT_PAGE, MAX_HISTORY_PAGE, MAX_HISTORY_TYPES, MAX_PAGE
from aos.api.problems import MethodNotAllowedError, problem_response
from aos.api.requests import (
    correlation_id,
    link,
    parse_body,
    path_id,
    query_bool,
    query_int,
)
from aos.api.schemas import (
    AgentDetail,
    AgentList,
    AgentPatch,
    AgentResource,
    AlignmentRequest,
    AlignmentResponse,
    BroadcastAccepted,
    DeadLetterItem,
    DeadLetterList,
    EventAccepted,
    EventIn,
    GoalList,
    Health,
    HistoryFilter,
    HistoryItem,
    HistoryList,
    LetterReplayed,
    MessageAccepted,
    PurgeJob,
    RegisterAgent,
    ReminderList,
    ReplaceAgent,
    TurnResource,
)
from aos.domain.history import HISTORY_KINDS
from aos.domain.models import (
    EVENT_TYPE_PATTERN,
    AgentSpec,
    Goal,
    GoalChanges,
    GoalCreate,
    GoalUpdate,
    Reminder,
)
from aos.domain.reminders import ReminderRequest
from aos.domain.turns import ApprovalRequest, MessageRequest
from aos.errors import FieldError, InvalidInputError
from aos.ports.index import IndexEntry
from aos.ports.letters import LetterQueue, StoredLetter
from aos.ports.maintenance import PurgeStatus
from aos.services.agents import Change
from aos.services.letters import describe_original
from aos.version import VERSION

__all__ = ["OPERATIONS", "ApiOperation", "Call", "QueryParam", "Services", "dispatch"]

logger = logging.getLogger("aos.http")


# ------------------------------------------------------------------------------ agents
async def register_agent(call: Call) -> func.HttpResponse:
    body = parse_body(call.req, RegisterAgent)
    change = await call.manager.register_agent(AgentSpec.model_validate(body.model_dump()))
    return _agent_answer(call, change, 201)


async def put_agent(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    body = parse_body(call.req, ReplaceAgent)
    if body.agent_id not in (None, agent_id):
        raise InvalidInputError(
            "agent_id in the body differs from the path",
            [FieldError(("body", "agent_id"), "must equal the id in the path")],
        )
    spec = AgentSpec.model_validate({**body.model_dump(), "agent_id": agent_id})
    change = await call.manager.register_agent(spec, replace=True)
    return _agent_answer(call, change, 201 if change.created else 200)


async def patch_agent(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    body = parse_body(call.req, AgentPatch)
    change = await call.manager.update_agent(agent_id, body.model_dump(exclude_unset=True))
    return _agent_answer(call, change, 200)


async def get_agent(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    return call.respond(AgentDetail.of(*await call.manager.get_agent(agent_id)))


async def list_agents(call: Call) -> func.HttpResponse:
    limit = query_int(call.req, "limit", default=DEFAULT_PAGE, low=1, high=MAX_PAGE)
    continuation = call.req.params.get("continuation") or None
    page = await call.manager.list_agents(limit=limit, continuation=continuation)
    next_link = (
        link(call.req, "agents", limit=limit, continuation=page.continuation)
        if page.continuation
        else None
    )
    items = [AgentResource.from_entry(e) for e in page.value]
    return call.respond(AgentList(value=items, nextLink=next_link))


async def delete_agent(call: Call) -> func.HttpResponse:
    """204 once deregistered; with ``purge`` 202 and the purge's status link, where its
    progress shows (the rows are deleted in the background); 202 too if the entity has not
    shown the deregistration yet (repeat the DELETE)."""
    agent_id = path_id(call.req, "agent_id")
    change = await call.manager.deregister_agent(agent_id, purge=query_bool(call.req, "purge"))
    if not change.settled:
        return call.respond(
            {"agent_id": agent_id, "status": "deregistering"},
            202,
            Location=link(call.req, f"agents/{agent_id}"),
        )
    if isinstance(change.value, PurgeStatus):
        job = _purge_job(call, change.value)
        return call.respond(job, 202, Location=job.links["self"])
    return call.respond(None, 204)


async def get_purge(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    return call.respond(_purge_job(call, await call.manager.purge_status(agent_id)))


def _purge_job(call: Call, status: PurgeStatus) -> PurgeJob:
    return PurgeJob(
        agent_id=status.agent_id,
        status="done" if status.done else "purging",
        history_deleted=status.history_deleted,
        receipts_deleted=status.receipts_deleted,
        requested_at=status.requested_at,
        updated_at=status.updated_at,
        finished_at=status.finished_at,
        links={
            "self": link(call.req, f"agents/{status.agent_id}/purge"),
            "history": link(call.req, f"agents/{status.agent_id}/history"),
        },
    )


async def list_history(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    params = HistoryFilter.parse(call.req.params)
    page = await call.manager.get_history(agent_id, params.to_query())
    next_link = None
    if page.continuation is not None:
        next_page = params.next_page(page.continuation)
        next_link = link(call.req, f"agents/{agent_id}/history", **next_page)
    items = [HistoryItem.from_record(r) for r in page.records]
    return call.respond(HistoryList.model_validate({"value": items, "nextLink": next_link}))


# ------------------------------------------------------------------------------ goals
async def list_goals(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    goals = await call.manager.list_goals(agent_id)
    return call.respond(GoalList(value=[Goal.model_validate(g) for g in goals]))


async def get_goal(call: Call) -> func.HttpResponse:
    agent_id, goal_id = path_id(call.req, "agent_id"), path_id(call.req, "goal_id")
    goal = await call.manager.get_goal(agent_id, goal_id)
    return call.respond(Goal.model_validate(goal))


async def add_goal(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    change = await call.manager.add_goal(agent_id, parse_body(call.req, GoalCreate))
    goal = Goal.model_validate(change.value)
    location = link(call.req, f"agents/{agent_id}/goals/{goal.id}")
    return call.respond(goal, 201 if change.settled else 202, Location=location)


async def patch_goal(call: Call) -> func.HttpResponse:
    agent_id, goal_id = path_id(call.req, "agent_id"), path_id(call.req, "goal_id")
    body = parse_body(call.req, GoalChanges)
    update = GoalUpdate.model_validate({**body.model_dump(exclude_unset=True), "id": goal_id})
    change = await call.manager.update_goal(agent_id, update)
    return call.respond(Goal.model_validate(change.value), 200 if change.settled else 202)


async def delete_goal(call: Call) -> func.HttpResponse:
    agent_id, goal_id = path_id(call.req, "agent_id"), path_id(call.req, "goal_id")
    change = await call.manager.remove_goal(agent_id, goal_id)
    return call.respond(None, 204) if change.settled else call.respond(change.value, 202)


# ------------------------------------------------------------------------------ reminders
async def list_reminders(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    reminders = await call.manager.list_reminders(agent_id)
    return call.respond(ReminderList(value=[Reminder.model_validate(r) for r in reminders]))


async def put_reminder(call: Call) -> func.HttpResponse:
    agent_id, reminder_id = path_id(call.req, "agent_id"), path_id(call.req, "reminder_id")
    body = parse_body(call.req, ReminderRequest)
    change = await call.manager.set_reminder(agent_id, reminder_id, body)
    status = (201 if change.created else 200) if change.settled else 202
    location = link(call.req, f"agents/{agent_id}/reminders/{reminder_id}")
    return call.respond(Reminder.model_validate(change.value), status, Location=location)


async def delete_reminder(call: Call) -> func.HttpResponse:
    agent_id, reminder_id = path_id(call.req, "agent_id"), path_id(call.req, "reminder_id")
    change = await call.manager.cancel_reminder(agent_id, reminder_id)
    return call.respond(None, 204) if change.settled else call.respond(change.value, 202)


# ------------------------------------------------------------------------------ events
async def post_event(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    body = parse_body(call.req, EventIn)
    event = body.to_event(agent_id=agent_id, correlation_id=call.correlation)
    try:
        await call.manager.send_event(event)
    except InvalidInputError as exc:  # the agent's kind refused the event's data
        raise exc.located("body") from exc
    accepted = EventAccepted(
        event_id=event.event_id,
        agent_id=agent_id,
        correlation_id=event.correlation_id,
        links={"agent": link(call.req, f"agents/{agent_id}")},
    )
    return call.respond(accepted, 202, Location=accepted.links["agent"])


async def publish_event(call: Call) -> func.HttpResponse:
    body = parse_body(call.req, EventIn)
    event = body.to_event(agent_id=None, correlation_id=call.correlation)
    try:
        subscribers = await call.manager.publish_event(event)
    except InvalidInputError as exc:
        raise exc.located("body") from exc
    accepted = BroadcastAccepted(
        event_id=event.event_id,
        type=event.type,
        subscribers=subscribers,
        correlation_id=event.correlation_id,
    )
    return call.respond(accepted, 202)


async def alignment(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    body = parse_body(call.req, AlignmentRequest)
    result = await call.manager.evaluate_alignment(agent_id, body.action)
    return call.respond(AlignmentResponse(agent_id=agent_id, **result.as_dict()))


# ------------------------------------------------------------------------------ thinking
async def post_message(call: Call) -> func.HttpResponse:
    agent_id = path_id(call.req, "agent_id")
    body = parse_body(call.req, MessageRequest)
    try:
        message_id, turn_id = await call.messages.send_message(
            agent_id, body, correlation_id=call.correlation
        )
    except InvalidInputError as exc:
        raise exc.located("body") from exc
    status_url = link(call.req, f"agents/{agent_id}/turns/{turn_id}")
    accepted = MessageAccepted(
        message_id=message_id, turn_id=turn_id, agent_id=agent_id, status_url=status_url
    )
    return call.respond(accepted, 202, Location=status_url)


async def get_turn(call: Call) -> func.HttpResponse:
    agent_id, turn_id = path_id(call.req, "agent_id"), path_id(call.req, "turn_id")
    return call.respond(
        TurnResource.model_validate(await call.messages.get_turn(agent_id, turn_id))
    )


async def approve_turn(call: Call) -> func.HttpResponse:
    agent_id, turn_id = path_id(call.req, "agent_id"), path_id(call.req, "turn_id")
    body = parse_body(call.req, ApprovalRequest)
    view = await call.messages.approve(agent_id, turn_id, body)
    status_url = link(call.req, f"agents/{agent_id}/turns/{turn_id}")
    return call.respond(TurnResource.model_validate(view), 202, Location=status_url)


# ------------------------------------------------------------------------------ service
async def health(call: Call) -> func.HttpResponse:
    storage = await call.runtime.storage_health()
    healthy = all(v == "ok" for v in storage.values())
    body = Health(status="ok" if healthy else "degraded", storage=storage, version=VERSION)
    return call.respond(body, 200 if healthy else 503)


async def openapi(call: Call) -> func.HttpResponse:
    from aos.api.openapi import openapi_document

    server = link(call.req, "").rstrip("/")
    return call.respond(openapi_document(OPERATIONS, server=server, kinds=call.runtime.kinds))


# ------------------------------------------------------------------------------ letters
async def list_deadletters(call: Call) -> func.HttpResponse:
    return await _list_letters(call, "deadletter")


async def get_deadletter(call: Call) -> func.HttpResponse:
    return await _get_letter(call, "deadletter")


async def replay_deadletter(call: Call) -> func.HttpResponse:
    return await _replay_letter(call, "deadletter")


async def list_poison(call: Call) -> func.HttpResponse:
    return await _list_letters(call, "poison")


async def get_poison(call: Call) -> func.HttpResponse:
    return await _get_letter(call, "poison")


async def replay_poison(call: Call) -> func.HttpResponse:
    return await _replay_letter(call, "poison")


async def _list_letters(call: Call, queue: LetterQueue) -> func.HttpResponse:
    limit = query_int(call.req, "limit", default=DEFAULT_PAGE, low=1, high=MAX_PAGE)
    continuation = call.req.params.get("continuation") or None
    page = await call.letters.page(queue, limit=limit, continuation=continuation)
    path = _LETTER_PATHS[queue]
    next_link = (
        link(call.req, path, limit=limit, continuation=page.continuation)
        if page.continuation
        else None
    )
    return call.respond(
        DeadLetterList(value=[_letter_item(x) for x in page.value], nextLink=next_link)
    )


async def _get_letter(call: Call, queue: LetterQueue) -> func.HttpResponse:
    letter = await call.letters.get(queue, path_id(call.req, "letter_id"))
    return call.respond(_letter_item(letter))


async def _replay_letter(call: Call, queue: LetterQueue) -> func.HttpResponse:
    replayed = await call.letters.replay(queue, path_id(call.req, "letter_id"))
    return call.respond(LetterReplayed(id=replayed.id, event_id=replayed.event_id), 202)


# ------------------------------------------------------------------------------ helpers
def _agent_answer(call: Call, change: Change, status: int) -> func.HttpResponse:
    entry: IndexEntry = change.value
    location = link(call.req, f"agents/{entry.agent_id}")
    body = AgentResource.from_entry(entry)
    return call.respond(body, status if change.settled else 202, Location=location)


_LETTER_PATHS: dict[LetterQueue, str] = {"deadletter": "deadletters", "poison": "poison"}


def _letter_item(letter: StoredLetter) -> DeadLetterItem:
    return DeadLetterItem(
        id=letter.id,
        queue=letter.queue,
        reason=letter.reason,
        errors=letter.errors,
        original=letter.original,
        message_id=letter.message_id,
        dequeue_count=letter.dequeue_count,
        dead_lettered_at=letter.dead_lettered_at,
        **describe_original(letter.original),
    )


def _path(req: func.HttpRequest) -> str:
    return str(urlsplit(req.url).path)


_TYPE = EVENT_TYPE_PATTERN[1:-1]
_PAGING = (
    QueryParam(
        "limit",
        f"page size (default {DEFAULT_PAGE}, at most {MAX_PAGE})",
        "integer",
        (("minimum", 1), ("maximum", MAX_PAGE)),
    ),
    QueryParam("continuation", "opaque token; follow nextLink instead of building it"),
)
_HISTORY_QUERY = (
    QueryParam(
        "limit", f"page size (default {DEFAULT_PAGE}, at most {MAX_HISTORY_PAGE})",
        "integer", (("minimum", 1), ("maximum", MAX_HISTORY_PAGE)),
    ),
    _PAGING[1],
    QueryParam(
        "type",
        f"only these types, comma-separated, at most {MAX_HISTORY_TYPES} (decisions: 'decision')",
        constraints=(("pattern", f"^({_TYPE}(,{_TYPE}){{0,{MAX_HISTORY_TYPES - 1}}})?$"),),
    ),
    QueryParam(
        "kind", "only records of this kind",
        constraints=(("enum", list(HISTORY_KINDS)),),
    ),
    QueryParam(
        "since", "recorded at or after this time (ISO 8601); alias 'from'",
        constraints=(("format", "date-time"),),
    ),
    QueryParam(
        "until", "recorded before this time (ISO 8601, later than since); alias 'to'",
        constraints=(("format", "date-time"),),
    ),
)  # fmt: skip
_DEAD = "dead-lettered messages (never deliverable as they were)"
_POISON = "poison messages (delivery failed maxDequeueCount times)"
_REPLAY = (
    "Put the original message back on the events queue, unchanged, and remove the letter (a "
    "second replay answers 404)"
)

OPERATIONS: tuple[ApiOperation, ...] = (
    ApiOperation(
        "agents", "POST", register_agent, "Register an agent", 201, AgentResource,
        RegisterAgent, (400, 409, 413, 415, 422), also=(202,),
    ),
    ApiOperation(
        "agents", "GET", list_agents, "List registered agents (paged)", 200, AgentList,
        query=_PAGING,
    ),
    ApiOperation(
        "agent_item", "GET", get_agent,
        "The agent: its spec and status, as listed, with its persisted context", 200, AgentDetail,
        errors=(400, 404),
    ),
    ApiOperation(
        "agent_item", "PUT", put_agent, "Create or replace an agent (idempotent)", 200,
        AgentResource, ReplaceAgent, (400, 409, 413, 415, 422), also=(201, 202),
    ),
    ApiOperation(
        "agent_item", "PATCH", patch_agent,
        "Change purpose, scope, success criteria, adapter or subscriptions", 200, AgentResource,
        AgentPatch, (400, 404, 409, 413, 415, 422), also=(202,),
    ),
    ApiOperation(
        "agent_item", "DELETE", delete_agent,
        "Deregister an agent (204). With purge=true (202) its history and delivery receipts are "
        "deleted in the background: the Location header is the purge's status; an agent "
        "already deregistered whose history remains can be purged too", 204,
        errors=(400, 404, 409),
        query=(
            QueryParam("purge", "also delete the agent's archived history (background)", "boolean"),
        ),
        also=(202,),
    ),
    ApiOperation(
        "agent_goals", "GET", list_goals, "The agent's goals", 200, GoalList, errors=(400, 404),
    ),
    ApiOperation(
        "agent_goals", "POST", add_goal, "Add a goal", 201, Goal, GoalCreate,
        (400, 404, 409, 413, 415, 422), also=(202,),
    ),
    ApiOperation("agent_goal", "GET", get_goal, "One goal", 200, Goal, errors=(400, 404)),
    ApiOperation(
        "agent_goal", "PATCH", patch_goal, "Change a goal", 200, Goal, GoalChanges,
        (400, 404, 413, 415, 422), also=(202,),
    ),
    ApiOperation(
        "agent_goal", "DELETE", delete_goal, "Remove a goal", 204, errors=(400, 404), also=(202,),
    ),
    ApiOperation(
        "agent_events", "POST", post_event, "Queue an event for the agent", 202, EventAccepted,
        EventIn, (400, 404, 413, 415),
    ),
    ApiOperation(
        "agent_history", "GET", list_history,
        "Archived events and decisions, newest first (paged, filterable)", 200, HistoryList,
        errors=(400, 404), query=_HISTORY_QUERY,
    ),
    ApiOperation(
        "agent_purge", "GET", get_purge,
        "The agent's last purge: rows deleted so far, done or not", 200, PurgeJob,
        errors=(400, 404),
    ),
    ApiOperation(
        "agent_reminders", "GET", list_reminders,
        "The agent's active reminders, with their next due times", 200, ReminderList,
        errors=(400, 404),
    ),
    ApiOperation(
        "agent_reminder", "PUT", put_reminder,
        "Set a reminder: the agent receives the event at 'at' or after 'after_seconds', and "
        "with 'every_seconds' again at that interval (201 created, 200 replaced)", 201,
        Reminder, ReminderRequest, (400, 404, 413, 415, 422), also=(200, 202),
    ),
    ApiOperation(
        "agent_reminder", "DELETE", delete_reminder, "Cancel a reminder: it never fires again",
        204, errors=(400, 404), also=(202,),
    ),
    ApiOperation(
        "agent_alignment", "POST", alignment,
        "Score an action against the agent's purpose (0.0-1.0, with reasons)", 200,
        AlignmentResponse, AlignmentRequest, (400, 404, 413, 415),
    ),
    ApiOperation(
        "agent_messages", "POST", post_message,
        "Say something to the agent: it thinks (a turn: its model, its tools) and answers; "
        "the same message_id twice is one turn", 202, MessageAccepted, MessageRequest,
        (400, 404, 413, 415, 429),
    ),
    ApiOperation(
        "agent_turn", "GET", get_turn,
        "A turn: its status, reply, tool calls and usage, or the tool call it waits to have "
        "approved", 200, TurnResource, errors=(400, 404),
    ),
    ApiOperation(
        "agent_turn_approval", "POST", approve_turn,
        "Approve or refuse the tool call a turn waits on", 202, TurnResource, ApprovalRequest,
        (400, 404, 409, 415),
    ),
    ApiOperation(
        "events", "POST", publish_event, "Publish an event to every subscribed agent", 202,
        BroadcastAccepted, EventIn, (400, 413, 415),
    ),
    ApiOperation(
        "deadletters", "GET", list_deadletters, f"List {_DEAD}, newest first (paged)", 200,
        DeadLetterList, query=_PAGING,
    ),
    ApiOperation(
        "deadletter_item", "GET", get_deadletter, f"One of the {_DEAD}", 200, DeadLetterItem,
        errors=(400, 404),
    ),
    ApiOperation(
        "deadletter_replay", "POST", replay_deadletter, _REPLAY, 202, LetterReplayed,
        errors=(400, 404, 422),
    ),
    ApiOperation(
        "poison", "GET", list_poison, f"List {_POISON}, newest first (paged)", 200,
        DeadLetterList, query=_PAGING,
    ),
    ApiOperation(
        "poison_item", "GET", get_poison, f"One of the {_POISON}", 200, DeadLetterItem,
        errors=(400, 404),
    ),
    ApiOperation(
        "poison_replay", "POST", replay_poison, _REPLAY, 202, LetterReplayed,
        errors=(400, 404, 422),
    ),
    ApiOperation(
        "health", "GET", health, "Liveness and storage reachability", 200, Health, errors=(),
        also=(503,),
    ),
    ApiOperation("openapi", "GET", openapi, "This API's OpenAPI document", 200, errors=()),
)  # fmt: skip

_BY_FUNCTION: dict[str, dict[str, ApiOperation]] = {}
for _operation in OPERATIONS:
    _BY_FUNCTION.setdefault(_operation.function, {})[_operation.method] = _operation


async def dispatch(
    function: str, req: func.HttpRequest, client: Any, runtime: Services
) -> func.HttpResponse:
    """Serve one request to the HTTP function ``function``: its method's handler, or a 405; any
    error as problem+json."""
    call = Call(req, runtime, client, correlation_id(req))
    operations = _BY_FUNCTION[function]
    try:
        operation = operations.get(req.method.upper())
        if operation is None:
            raise MethodNotAllowedError(req.method.upper(), sorted(operations))
        return await operation.handler(call)
    except Exception as exc:
        return problem_response(exc, instance=_path(req), correlation_id=call.correlation)
