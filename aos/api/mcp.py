"""The app's MCP server: every agent's context and history as resources, and eight tools.

    resources   aos://agents/{agent_id}/context    the agent and its context (as GET /api/agents/{id})
                aos://agents/{agent_id}/history    the newest history records
    tools       ask_agent, get_turn, send_event, add_goal, update_goal, evaluate_alignment,
                schedule_reminder, cancel_reminder

It is built on the official ``mcp`` SDK's low-level ``Server`` over an ``AgentService``, which reads
state and history through its ``ContextStore``, and served as stateless streamable HTTP with
JSON responses (``asgi_app``): every POST is one whole exchange, so any instance can answer it and
nothing outlives the request. Tool arguments are the HTTP routes' bodies plus their path parameters,
validated with the same models; AOS errors become tool results with ``isError`` (resources: MCP
errors), never crashes. Nothing here knows about Azure Functions: ``aos.functions.mcp_function``
bridges the HTTP trigger, and loads this module (and the SDK) on its first request.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from aos.api.schemas import (
    AgentDetail,
    AlignmentRequest,
    AlignmentResponse,
    EventAccepted,
    EventIn,
    HistoryFilter,
    HistoryItem,
    TurnResource,
)
from aos.domain.conversation import TURN_ID_PATTERN
from aos.domain.models import (
    AGENT_ID_PATTERN,
    AgentId,
    EventId,
    Goal,
    GoalChanges,
    GoalCreate,
    GoalId,
    GoalUpdate,
    Reminder,
    ReminderId,
    full_match,
    new_id,
)
from aos.domain.reminders import ReminderRequest
from aos.domain.turns import MAX_MESSAGE_CHARS, MessageRequest
from aos.domain.validation import parse
from aos.errors import AOSError, InvalidInputError, NotFoundError, UnknownOperationError
from aos.ports.index import IndexStatus
from aos.services.agents import AgentService, Change
from aos.services.messages import MessageService
from aos.version import VERSION

__all__ = [
    "AGENTS_PER_PAGE",
    "AgentTools",
    "asgi_app",
    "context_uri",
    "history_uri",
    "local_transport_security",
    "mcp_server",
]

logger = logging.getLogger("aos.api.mcp")
# A session manager starts and stops around every request (see ``asgi_app``): the SDK's INFO lines
# about that would be three log records per request saying nothing.
for _name in ("mcp.server.streamable_http_manager", "mcp.server.streamable_http"):
    logging.getLogger(_name).setLevel(logging.WARNING)

AGENTS_PER_PAGE = 100
"""Agents per ``resources/list`` page (two resources each); ``nextCursor`` leads to the next."""
JSON = "application/json"
_URI = re.compile(
    r"^aos://agents/(?P<agent_id>[^/?#]+)/(?P<part>context|history)(?:\?(?P<query>[^#]*))?$"
)


def context_uri(agent_id: str) -> str:
    return f"aos://agents/{agent_id}/context"


def history_uri(agent_id: str) -> str:
    return f"aos://agents/{agent_id}/history"


# --------------------------------------------------------------------------------------- arguments
# Each tool takes the body of the matching HTTP route plus the route's path parameters.
class _Agent(BaseModel):
    agent_id: AgentId = Field(description="the agent's id")


class SendEventArgs(EventIn, _Agent):
    pass


class AddGoalArgs(GoalCreate, _Agent):
    pass


class _AgentGoal(_Agent):
    goal_id: GoalId = Field(description="the goal's id")


class UpdateGoalArgs(GoalChanges, _AgentGoal):
    pass


class AlignmentArgs(AlignmentRequest, _Agent):
    pass


class _AgentReminder(_Agent):
    reminder_id: ReminderId = Field(description="the reminder's id; the same id replaces it")


class ScheduleReminderArgs(ReminderRequest, _AgentReminder):
    pass


class CancelReminderArgs(_AgentReminder):
    pass


MAX_ASK_WAIT_SECONDS = 120.0
"""How long ask_agent may wait for a turn within one request (the function's own timeout is
longer)."""


class AskAgentArgs(_Agent):
    message: str = Field(
        min_length=1, max_length=MAX_MESSAGE_CHARS, description="what to say to the agent"
    )
    message_id: EventId | None = Field(
        default=None, description="your id for the message: the same id twice is one turn"
    )
    wait_seconds: float = Field(
        default=60.0, ge=0, le=MAX_ASK_WAIT_SECONDS,
        description="how long to wait for the answer; then get_turn tells how it went on",
    )  # fmt: skip


class GetTurnArgs(_Agent):
    turn_id: str = Field(pattern=TURN_ID_PATTERN, description="the turn's id (from ask_agent)")


class ReminderResult(BaseModel):
    agent_id: str
    reminder: Reminder
    created: bool = Field(description="true: a new reminder; false: it replaced one")
    status: Literal["applied", "queued"] = Field(
        description="applied: the agent shows the change; queued: it applies shortly"
    )


class ReminderCancelled(BaseModel):
    agent_id: str
    reminder_id: str
    status: Literal["cancelled", "queued"] = Field(
        description="cancelled: the agent shows it gone; queued: it is cancelled shortly"
    )


class GoalResult(BaseModel):
    agent_id: str
    goal: Goal
    status: Literal["applied", "queued"] = Field(
        description="applied: the agent shows the change; queued: it applies shortly"
    )


# --------------------------------------------------------------------------------------- the tools
class AgentTools:
    """What the endpoint does, one method per tool or resource; the docstrings are what MCP clients
    (and the language models behind them) read."""

    def __init__(
        self,
        manager: AgentService,
        *,
        messages: MessageService | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.manager = manager
        self.messages = messages
        self.correlation_id = correlation_id or new_id()

    async def ask_agent(self, args: AskAgentArgs) -> TurnResource:
        """Say something to an agent and get its answer: the agent thinks (its model, with its
        purpose, goals, state and recent conversation, using its tools: state, goals,
        decisions, events to other agents, reminders) and replies. Answers the turn: status
        completed with the reply, failed with the error, waiting_approval with the tool call
        someone must approve, or still running after wait_seconds (then call get_turn with the
        turn_id). Give a message_id to make retries safe."""
        service = self._messages()
        request = MessageRequest(content=args.message, message_id=args.message_id)
        _, turn_id = await service.send_message(
            args.agent_id, request, correlation_id=self.correlation_id
        )
        view = await service.wait_for_turn(args.agent_id, turn_id, within=args.wait_seconds)
        return TurnResource.model_validate(view)

    async def get_turn(self, args: GetTurnArgs) -> TurnResource:
        """How an agent's turn (started by ask_agent) stands: its status, reply or error, the
        tool calls it made, the tool call it waits to have approved, and the tokens used."""
        return TurnResource.model_validate(
            await self._messages().get_turn(args.agent_id, args.turn_id)
        )

    def _messages(self) -> MessageService:
        if self.messages is None:
            raise UnknownOperationError("this server does not run turns")
        return self.messages

    async def send_event(self, args: SendEventArgs) -> EventAccepted:
        """Send an event to an agent (any registered agent: to speak for another agent, set
        source to its id, so the recipient can answer it). The event is queued and the agent
        handles it moments later:
        its context then shows it in last_event and recent_events, and its history lists it.

        type is the event type (such as "invoice.paid"); data is any JSON. An event whose data
        has an "options" list asks the agent for a decision. Give your own event_id to make
        retries safe: an agent applies each event_id once. correlation_id follows the event into
        the agent's records; source names the sender. Answers the event_id and correlation_id.
        """
        event = args.to_event(agent_id=args.agent_id, correlation_id=self.correlation_id)
        await self.manager.send_event(event)
        return EventAccepted(
            event_id=event.event_id,
            agent_id=args.agent_id,
            correlation_id=event.correlation_id,
            links={"context": context_uri(args.agent_id), "history": history_uri(args.agent_id)},
        )

    async def schedule_reminder(self, args: ScheduleReminderArgs) -> ReminderResult:
        """Wake an agent later with an event: type and data as for send_event, at a time (at,
        ISO 8601) or after a delay (after_seconds), and with every_seconds again at that
        interval. A reminder due while the service was down fires once when it is back. The
        same reminder_id again replaces the reminder. Answers the reminder with its next due
        time."""
        request = ReminderRequest.model_validate(
            args.model_dump(exclude={"agent_id", "reminder_id"}, exclude_unset=True)
        )
        change = await self.manager.set_reminder(args.agent_id, args.reminder_id, request)
        return ReminderResult(
            agent_id=args.agent_id,
            reminder=Reminder.model_validate(change.value),
            created=change.created,
            status="applied" if change.settled else "queued",
        )

    async def cancel_reminder(self, args: CancelReminderArgs) -> ReminderCancelled:
        """Cancel one of an agent's reminders: it never fires again. An error if the agent has
        no reminder of that id."""
        change = await self.manager.cancel_reminder(args.agent_id, args.reminder_id)
        return ReminderCancelled(
            agent_id=args.agent_id,
            reminder_id=args.reminder_id,
            status="cancelled" if change.settled else "queued",
        )

    async def add_goal(self, args: AddGoalArgs) -> GoalResult:
        """Give an agent a goal. description says what to achieve; id names the goal (one is
        made up if you leave it out; giving one makes retries safe); status is pending,
        in_progress, achieved or abandoned; progress is from 0 to 1; metadata is a small JSON
        object. Answers the goal as stored."""
        goal = GoalCreate.model_validate(args.model_dump(exclude={"agent_id"}, exclude_unset=True))
        return _goal_result(args.agent_id, await self.manager.add_goal(args.agent_id, goal))

    async def update_goal(self, args: UpdateGoalArgs) -> GoalResult:
        """Change one of an agent's goals: its status (pending, in_progress, achieved,
        abandoned), progress (0 to 1), description or metadata. Give at least one of them;
        the others stay as they are. Answers the goal as changed."""
        changes = args.model_dump(exclude={"agent_id"}, exclude_unset=True)
        update = parse(GoalUpdate, changes, what="goal change")
        return _goal_result(args.agent_id, await self.manager.update_goal(args.agent_id, update))

    async def evaluate_alignment(self, args: AlignmentArgs) -> AlignmentResponse:
        """Score how well an action serves an agent's purpose, scope, success criteria and goals,
        without doing anything. action is text or any JSON describing what would be done.
        Answers a score from 0 (unrelated) to 1 (fully aligned), the terms that matched and
        the reasons."""
        result = await self.manager.evaluate_alignment(args.agent_id, args.action)
        return AlignmentResponse(agent_id=args.agent_id, **result.as_dict())

    async def read_context(self, agent_id: str, query: str) -> dict[str, Any]:
        """An agent's persisted context: its spec (purpose, scope, success criteria,
        subscriptions), goals, key/value state, last event, recent events and decisions,
        counters, and active reminders with their next due times."""
        if query:
            raise InvalidInputError("The context resource takes no query")
        return AgentDetail.of(*await self.manager.get_agent(agent_id)).model_dump(mode="json")

    async def read_history(self, agent_id: str, query: str) -> dict[str, Any]:
        """An agent's history, newest first: every event it handled and every decision it made,
        with their payloads, 50 at a time. "next" is the URI of the next page (null on the last);
        the URI takes the query of GET /api/agents/{agent_id}/history (limit, type, kind, since,
        until), e.g. aos://agents/cfo/history?type=invoice.paid&limit=100."""
        params = HistoryFilter.parse(dict(parse_qsl(query, keep_blank_values=True)))
        page = await self.manager.get_history(agent_id, params.to_query())
        if page.continuation is None:
            continuation = next_uri = None
        else:
            next_page = params.next_page(page.continuation)
            continuation = next_page["continuation"]
            next_uri = f"{history_uri(agent_id)}?{urlencode(next_page)}"
        items = [HistoryItem.from_record(r).model_dump(mode="json") for r in page.records]
        return {"value": items, "continuation": continuation, "next": next_uri}


def _goal_result(agent_id: str, change: Change) -> GoalResult:
    status: Literal["applied", "queued"] = "applied" if change.settled else "queued"
    return GoalResult(agent_id=agent_id, goal=Goal.model_validate(change.value), status=status)


@dataclass(frozen=True, slots=True)
class _Tool:
    arguments: type[BaseModel]
    answer: type[BaseModel]
    run: Callable[[AgentTools, Any], Awaitable[BaseModel]]
    read_only: bool = False

    def describe(self, name: str) -> types.Tool:
        return types.Tool(
            name=name,
            description=_doc(self.run),
            input_schema=_schema(self.arguments, "validation"),
            output_schema=_schema(self.answer, "serialization"),
            annotations=types.ToolAnnotations(read_only_hint=self.read_only),
        )


TOOLS: dict[str, _Tool] = {
    "ask_agent": _Tool(AskAgentArgs, TurnResource, AgentTools.ask_agent),
    "get_turn": _Tool(GetTurnArgs, TurnResource, AgentTools.get_turn, read_only=True),
    "send_event": _Tool(SendEventArgs, EventAccepted, AgentTools.send_event),
    "add_goal": _Tool(AddGoalArgs, GoalResult, AgentTools.add_goal),
    "update_goal": _Tool(UpdateGoalArgs, GoalResult, AgentTools.update_goal),
    "schedule_reminder": _Tool(ScheduleReminderArgs, ReminderResult, AgentTools.schedule_reminder),
    "cancel_reminder": _Tool(CancelReminderArgs, ReminderCancelled, AgentTools.cancel_reminder),
    "evaluate_alignment": _Tool(
        AlignmentArgs, AlignmentResponse, AgentTools.evaluate_alignment, read_only=True
    ),
}
RESOURCES: dict[str, tuple[str, Callable[[AgentTools, str, str], Awaitable[dict[str, Any]]]]] = {
    "context": ("Agent context", AgentTools.read_context),
    "history": ("Agent history", AgentTools.read_history),
}


def _doc(function: Callable[..., Any]) -> str:
    """A docstring as clients show it: paragraphs on one line each."""
    return re.sub(r"(?<!\n)\n(?!\n)", " ", inspect.getdoc(function) or "")


def _schema(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict[str, Any]:
    schema = model.model_json_schema(mode=mode)
    schema.pop("title", None)
    schema.pop("description", None)  # the tool's docstring describes it
    return schema


# --------------------------------------------------------------------------------------- the server
def mcp_server(
    manager: AgentService,
    *,
    messages: MessageService | None = None,
    correlation_id: str | None = None,
) -> Server[Any]:
    """The MCP server over ``manager`` (and ``messages`` for the thinking tools); cheap to
    build, so one is built per request."""
    tools = AgentTools(manager, messages=messages, correlation_id=correlation_id)

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool.describe(name) for name, tool in TOOLS.items()])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = TOOLS.get(params.name)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool {params.name!r}")
        try:
            arguments = parse(tool.arguments, params.arguments, what=f"arguments of {params.name}")
            answer = (await tool.run(tools, arguments)).model_dump(mode="json")
        except AOSError as exc:
            return _tool_error(str(exc))
        except Exception:
            logger.exception(
                "MCP tool %s failed (correlation id %s)", params.name, tools.correlation_id
            )
            return _tool_error(
                f"An unexpected error occurred; the app's logs have it under correlation id "
                f"{tools.correlation_id}"
            )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(answer))],
            structured_content=answer,
        )

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        cursor = params.cursor if params is not None else None
        try:
            page = await manager.list_agents(limit=AGENTS_PER_PAGE, continuation=cursor)
        except AOSError as exc:  # a cursor that is not one
            raise _protocol_error(exc) from exc
        resources = [
            types.Resource(
                uri=f"aos://agents/{entry.agent_id}/{part}",
                name=f"{entry.agent_id}/{part}",
                title=f"{title}: {entry.agent_id}",
                description=f"{title} of the agent whose purpose is: {entry.spec.purpose}",
                mime_type=JSON,
            )
            for entry in page.value
            if entry.status is not IndexStatus.DEREGISTERING
            for part, (title, _) in RESOURCES.items()
        ]
        return types.ListResourcesResult(resources=resources, next_cursor=page.continuation)

    async def list_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        templates = [
            types.ResourceTemplate(
                uri_template=f"aos://agents/{{agent_id}}/{part}",
                name=f"agent-{part}",
                title=title,
                description=_doc(read),
                mime_type=JSON,
            )
            for part, (title, read) in RESOURCES.items()
        ]
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        found = _URI.fullmatch(uri)
        if found is None or not full_match(AGENT_ID_PATTERN, found["agent_id"]):
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource {uri}", {"uri": uri})
        try:
            read = RESOURCES[found["part"]][1]
            content = await read(tools, found["agent_id"], found["query"] or "")
        except AOSError as exc:
            raise _protocol_error(exc, {"uri": uri}) from exc
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, text=json.dumps(content), mime_type=JSON)]
        )

    return Server(
        "aos",
        version=VERSION,
        title="AOS agents",
        instructions=(
            "Perpetual, purpose-driven agents. Read an agent's context and history as resources "
            "(aos://agents/{agent_id}/context, aos://agents/{agent_id}/history); send it events, "
            "give it goals and score actions against its purpose with the tools."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


def _protocol_error(exc: AOSError, data: Any = None) -> MCPError:
    """The caller's mistakes (an unknown agent, a bad cursor) are invalid params, as the SDK
    answers an unknown resource; anything else (storage unavailable) is an internal error."""
    mistake = isinstance(exc, NotFoundError | InvalidInputError)
    return MCPError(types.INVALID_PARAMS if mistake else types.INTERNAL_ERROR, str(exc), data)


def _tool_error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def local_transport_security(extra_hosts: tuple[str, ...] = ()) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding protection for a local run: ``Host`` must be localhost, 127.0.0.1,
    [::1] or one of ``extra_hosts`` (any port), and an ``Origin``, when sent, an http(s) origin on
    one of them. The SDK answers 421 (Host) or 403 (Origin) otherwise."""
    hosts = [*LOCAL_HOSTS, *extra_hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*hosts, *(f"{h}:*" for h in hosts)],
        allowed_origins=[
            f"{scheme}://{h}{port}"
            for scheme in ("http", "https")
            for h in hosts
            for port in ("", ":*")
        ],
    )


def asgi_app(
    server: Server[Any],
    *,
    security: TransportSecuritySettings | None = None,
    max_body_bytes: int = 64 * 1024,
) -> ASGIApp:
    """An ASGI app that answers one request with ``server`` as stateless streamable HTTP with JSON
    responses. A session manager runs once, so each request gets its own, started and stopped
    around it inside the caller's event loop. ``security`` turns on the SDK's Host/Origin checks
    (see ``local_transport_security``); bodies over ``max_body_bytes`` get the SDK's 413."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        manager = StreamableHTTPSessionManager(
            server,
            json_response=True,
            stateless=True,
            security_settings=security,
            max_request_body_size=max_body_bytes,
        )
        async with manager.run():
            await manager.handle_request(scope, receive, send)

    return app
