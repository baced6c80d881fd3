"""The HTTP API as data: every operation's route, method, body, answers and query parameters.

Both the function registrations (``aos.functions.http_functions``) and the OpenAPI document
(``aos.api.openapi``) are built from ``OPERATIONS``, so there is no second list of routes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aos.domain.models import AGENT_ID_PATTERN, EVENT_TYPE_PATTERN

if TYPE_CHECKING:
    from pydantic import BaseModel


__all__ = [
    "DEFAULT_PAGE",
    "FUNCTIONS",
    "MAX_HISTORY_PAGE",
    "MAX_HISTORY_TYPES",
    "MAX_PAGE",
    "OPERATIONS",
    "PATH_PARAMETERS",
    "ApiOperation",
    "QueryParam",
]

from aos.api.schemas import DEFAULT_PAGE, MAX_HISTORY_PAGE, MAX_HISTORY_TYPES, MAX_PAGE


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    description: str
    type: str = "string"
    constraints: tuple[tuple[str, Any], ...] = ()
    """JSON Schema keywords beyond ``type`` (bounds, enum, pattern), so that the OpenAPI document
    says exactly what the handler accepts."""

    @property
    def schema(self) -> dict[str, Any]:
        return {"type": self.type, **dict(self.constraints)}


@dataclass(frozen=True, slots=True)
class ApiOperation:
    function: str
    """The Azure Function that serves the route (one function per route, several methods)."""
    method: str
    handler: str
    summary: str
    status: int
    response: str | None = None
    """Name of the answer's model in ``aos.api.schemas`` (or ``aos.domain.models``)."""
    request: str | None = None
    """Name of the body's model."""
    errors: tuple[int, ...] = (400,)
    query: tuple[QueryParam, ...] = ()
    also: tuple[int, ...] = ()
    """Other success statuses, answered with the same model: 202 when the entity has not applied
    the change within the settle time, 201 when a PUT created the agent."""

    @property
    def request_model(self) -> type[BaseModel] | None:
        return _model(self.request)

    @property
    def response_model(self) -> type[BaseModel] | None:
        return _model(self.response)


def _model(name: str | None) -> type[BaseModel] | None:
    """Models are named, not imported, so that importing the app (a cold start) does not build
    every API model; they are resolved when a route or the OpenAPI document first needs them."""
    if name is None:
        return None
    for module in ("aos.api.schemas", "aos.domain.models"):
        found = getattr(importlib.import_module(module), name, None)
        if found is not None:
            return found  # type: ignore[no-any-return]
    raise LookupError(f"no API model named {name!r}")


# function name -> route, as registered with the host (the host adds the "api/" prefix)
FUNCTIONS: dict[str, str] = {
    "agents": "agents",
    "agent_item": "agents/{agent_id}",
    "agent_goals": "agents/{agent_id}/goals",
    "agent_goal": "agents/{agent_id}/goals/{goal_id}",
    "agent_events": "agents/{agent_id}/events",
    "agent_history": "agents/{agent_id}/history",
    "agent_alignment": "agents/{agent_id}/alignment",
    "events": "events",
    "deadletters": "deadletters",
    "deadletter_item": "deadletters/{letter_id}",
    "deadletter_replay": "deadletters/{letter_id}/replay",
    "poison": "poison",
    "poison_item": "poison/{letter_id}",
    "poison_replay": "poison/{letter_id}/replay",
    "health": "health",
    "openapi": "openapi.json",
}

PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "agent_id": {"type": "string", "pattern": AGENT_ID_PATTERN},
    "goal_id": {"type": "string", "pattern": AGENT_ID_PATTERN},
    "letter_id": {"type": "string", "pattern": r"^[0-9]{17}-[0-9a-f]{8}$"},
}
"""The schema of each route parameter (``{agent_id}``): what ``path_id`` accepts."""

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


def _letter_operations(queue: str, what: str) -> tuple[ApiOperation, ...]:
    """List, read and replay for one of the two queues of set-aside messages."""
    plural = "deadletters" if queue == "deadletter" else "poison"
    return (
        ApiOperation(
            plural, "GET", f"list_{plural}", f"List {what}, newest first (paged)", 200,
            "DeadLetterList", query=_PAGING,
        ),
        ApiOperation(
            f"{queue}_item", "GET", f"get_{queue}", f"One of the {what}", 200, "DeadLetterItem",
            errors=(400, 404),
        ),
        ApiOperation(
            f"{queue}_replay", "POST", f"replay_{queue}",
            "Put the original message back on the events queue, unchanged, and remove the letter "
            "(a second replay answers 404)",
            202, "LetterReplayed", errors=(400, 404, 422),
        ),
    )  # fmt: skip


OPERATIONS: tuple[ApiOperation, ...] = (
    ApiOperation(
        "agents", "POST", "register_agent", "Register an agent", 201, "AgentResource",
        "RegisterAgent", (400, 409, 413, 415, 422), also=(202,),
    ),
    ApiOperation(
        "agents", "GET", "list_agents", "List registered agents (paged)", 200, "AgentList",
        query=_PAGING,
    ),
    ApiOperation(
        "agent_item", "GET", "get_agent", "The agent's persisted context", 200, "AgentContext",
        errors=(400, 404),
    ),
    ApiOperation(
        "agent_item", "PUT", "put_agent", "Create or replace an agent (idempotent)", 200,
        "AgentResource", "ReplaceAgent", (400, 409, 413, 415, 422), also=(201, 202),
    ),
    ApiOperation(
        "agent_item", "PATCH", "patch_agent",
        "Change purpose, scope, success criteria, adapter or subscriptions", 200, "AgentResource",
        "AgentPatch", (400, 404, 409, 413, 415, 422), also=(202,),
    ),
    ApiOperation(
        "agent_item", "DELETE", "delete_agent", "Deregister an agent", 204, errors=(400, 404, 409),
        query=(QueryParam("purge", "also delete the agent's archived history", "boolean"),),
        also=(202,),
    ),
    ApiOperation(
        "agent_goals", "GET", "list_goals", "The agent's goals", 200, "GoalList", errors=(400, 404),
    ),
    ApiOperation(
        "agent_goals", "POST", "add_goal", "Add a goal", 201, "Goal", "GoalCreate",
        (400, 404, 409, 413, 415, 422), also=(202,),
    ),
    ApiOperation(
        "agent_goal", "GET", "get_goal", "One goal", 200, "Goal", errors=(400, 404),
    ),
    ApiOperation(
        "agent_goal", "PATCH", "patch_goal", "Change a goal", 200, "Goal", "GoalChanges",
        (400, 404, 413, 415, 422), also=(202,),
    ),
    ApiOperation(
        "agent_goal", "DELETE", "delete_goal", "Remove a goal", 204, errors=(400, 404),
        also=(202,),
    ),
    ApiOperation(
        "agent_events", "POST", "post_event", "Queue an event for the agent", 202,
        "EventAccepted", "EventIn", (400, 404, 413, 415),
    ),
    ApiOperation(
        "agent_history", "GET", "list_history",
        "Archived events and decisions, newest first (paged, filterable)", 200, "HistoryList",
        errors=(400, 404),
        query=(
            QueryParam(
                "limit", f"page size (default {DEFAULT_PAGE}, at most {MAX_HISTORY_PAGE})",
                "integer", (("minimum", 1), ("maximum", MAX_HISTORY_PAGE)),
            ),
            _PAGING[1],
            QueryParam(
                "type",
                f"only these types, comma-separated, at most {MAX_HISTORY_TYPES} "
                "(decisions: 'decision')",
                constraints=(("pattern", f"^({_TYPE}(,{_TYPE}){{0,{MAX_HISTORY_TYPES - 1}}})?$"),),
            ),
            QueryParam(
                "kind", "only 'event', 'decision' or 'failure' records",
                constraints=(("enum", ["event", "decision", "failure"]),),
            ),
            QueryParam(
                "since", "recorded at or after this time (ISO 8601); alias 'from'",
                constraints=(("format", "date-time"),),
            ),
            QueryParam(
                "until", "recorded before this time (ISO 8601, later than since); alias 'to'",
                constraints=(("format", "date-time"),),
            ),
        ),
    ),
    ApiOperation(
        "agent_alignment", "POST", "alignment",
        "Score an action against the agent's purpose (0.0-1.0, with reasons)", 200,
        "AlignmentResponse", "AlignmentRequest", (400, 404, 413, 415),
    ),
    ApiOperation(
        "events", "POST", "publish_event", "Publish an event to every subscribed agent", 202,
        "BroadcastAccepted", "EventIn", (400, 413, 415),
    ),
    *(
        operation
        for queue, what in (
            ("deadletter", "dead-lettered messages (never deliverable as they were)"),
            ("poison", "poison messages (delivery failed maxDequeueCount times)"),
        )
        for operation in _letter_operations(queue, what)
    ),
    ApiOperation(
        "health", "GET", "health", "Liveness and storage reachability", 200, "Health", errors=(),
        also=(503,),
    ),
    ApiOperation(
        "openapi", "GET", "openapi", "This API's OpenAPI document", 200, errors=(),
    ),
)  # fmt: skip
