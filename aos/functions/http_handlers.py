"""The HTTP API's handlers (routes in ``aos.functions.routes``, logic in ``aos.services.agents``).

Handlers parse and validate, call the manager, and shape the answer with the API models; every
error becomes problem+json through one table (``aos.api.problems``). This module is imported
on the first request, not when the app is indexed, to keep cold starts short.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from aos.api.problems import MethodNotAllowedError, problem_response
from aos.api.schemas import (
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
    HistoryList,
    LetterReplayed,
    RegisterAgent,
    ReplaceAgent,
)
from aos.domain.models import AgentSpec, Goal, GoalChanges, GoalCreate, GoalUpdate
from aos.errors import FieldError, InvalidInputError
from aos.functions.container import AppRuntime
from aos.functions.http_support import (
    correlation_id,
    json_response,
    link,
    parse_body,
    path_id,
    query_bool,
    query_int,
)
from aos.functions.routes import DEFAULT_PAGE, MAX_PAGE, OPERATIONS, ApiOperation
from aos.ports.index import IndexEntry
from aos.ports.letters import LetterQueue, StoredLetter
from aos.services.agents import AgentManager, Change
from aos.services.letters import DeadLetters, describe_original
from aos.version import VERSION

__all__ = ["HttpApi"]

logger = logging.getLogger("aos.http")


@dataclass
class Call:
    """One request with what its handler needs."""

    req: func.HttpRequest
    runtime: AppRuntime
    client: Any
    correlation: str

    @cached_property
    def manager(self) -> AgentManager:
        return self.runtime.manager(self.client)

    @cached_property
    def letters(self) -> DeadLetters:
        return self.runtime.dead_letters()

    def respond(self, body: Any, status: int = 200, **headers: str) -> func.HttpResponse:
        return json_response(body, status=status, correlation=self.correlation, headers=headers)


Handler = Callable[[Call], Awaitable[func.HttpResponse]]


class HttpApi:
    """The handlers, one per ``ApiOperation.handler``."""

    def __init__(self, runtime: AppRuntime) -> None:
        self.runtime = runtime
        self._by_function: dict[str, dict[str, ApiOperation]] = {}
        for op in OPERATIONS:
            self._by_function.setdefault(op.function, {})[op.method] = op

    async def dispatch(
        self, function: str, req: func.HttpRequest, client: Any
    ) -> func.HttpResponse:
        call = Call(req, self.runtime, client, correlation_id(req))
        operations = self._by_function[function]
        try:
            operation = operations.get(req.method.upper())
            if operation is None:
                raise MethodNotAllowedError(req.method.upper(), sorted(operations))
            handler: Handler = getattr(self, operation.handler)
            return await handler(call)
        except Exception as exc:
            return problem_response(exc, instance=_path(req), correlation_id=call.correlation)

    # ------------------------------------------------------------------------------ agents
    async def register_agent(self, call: Call) -> func.HttpResponse:
        body = parse_body(call.req, RegisterAgent)
        change = await call.manager.register_agent(AgentSpec.model_validate(body.model_dump()))
        return self._agent_answer(call, change, 201)

    async def put_agent(self, call: Call) -> func.HttpResponse:
        agent_id = path_id(call.req, "agent_id")
        body = parse_body(call.req, ReplaceAgent)
        if body.agent_id not in (None, agent_id):
            raise InvalidInputError(
                "agent_id in the body differs from the path",
                [FieldError(("body", "agent_id"), "must equal the id in the path")],
            )
        spec = AgentSpec.model_validate({**body.model_dump(), "agent_id": agent_id})
        change = await call.manager.register_agent(spec, replace=True)
        return self._agent_answer(call, change, 201 if change.created else 200)

    async def patch_agent(self, call: Call) -> func.HttpResponse:
        agent_id = path_id(call.req, "agent_id")
        body = parse_body(call.req, AgentPatch)
        change = await call.manager.update_agent(agent_id, body.model_dump(exclude_unset=True))
        return self._agent_answer(call, change, 200)

    async def get_agent(self, call: Call) -> func.HttpResponse:
        agent_id = path_id(call.req, "agent_id")
        return call.respond(await call.manager.get_context(agent_id))

    async def list_agents(self, call: Call) -> func.HttpResponse:
        limit = query_int(call.req, "limit", default=DEFAULT_PAGE, low=1, high=MAX_PAGE)
        continuation = call.req.params.get("continuation") or None
        page = await call.manager.list_agents(limit=limit, continuation=continuation)
        next_link = (
            link(call.req, "agents", limit=limit, continuation=page.continuation)
            if page.continuation
            else None
        )
        items = [AgentResource.model_validate(e.as_resource()) for e in page.value]
        return call.respond(AgentList(value=items, nextLink=next_link))

    async def delete_agent(self, call: Call) -> func.HttpResponse:
        agent_id = path_id(call.req, "agent_id")
        change = await call.manager.deregister_agent(agent_id, purge=query_bool(call.req, "purge"))
        if not change.settled:
            return call.respond(
                {"agent_id": agent_id, "status": "deregistering"},
                202,
                Location=link(call.req, f"agents/{agent_id}"),
            )
        return call.respond(None, 204)

    async def list_history(self, call: Call) -> func.HttpResponse:
        agent_id = path_id(call.req, "agent_id")
        params = HistoryFilter.parse(call.req.params)
        page = await call.manager.get_history(agent_id, params.to_query())
        next_link = None
        if page.continuation is not None:
            next_page = params.next_page(page.continuation)
            next_link = link(call.req, f"agents/{agent_id}/history", **next_page)
        items = [r.as_item() for r in page.records]
        return call.respond(HistoryList.model_validate({"value": items, "nextLink": next_link}))

    # ------------------------------------------------------------------------------ goals
    async def list_goals(self, call: Call) -> func.HttpResponse:
        agent_id = path_id(call.req, "agent_id")
        goals = await call.manager.list_goals(agent_id)
        return call.respond(GoalList(value=[Goal.model_validate(g) for g in goals]))

    async def get_goal(self, call: Call) -> func.HttpResponse:
        agent_id, goal_id = path_id(call.req, "agent_id"), path_id(call.req, "goal_id")
        goal = await call.manager.get_goal(agent_id, goal_id)
        return call.respond(Goal.model_validate(goal))

    async def add_goal(self, call: Call) -> func.HttpResponse:
        agent_id = path_id(call.req, "agent_id")
        change = await call.manager.add_goal(agent_id, parse_body(call.req, GoalCreate))
        goal = Goal.model_validate(change.value)
        location = link(call.req, f"agents/{agent_id}/goals/{goal.id}")
        return call.respond(goal, 201 if change.settled else 202, Location=location)

    async def patch_goal(self, call: Call) -> func.HttpResponse:
        agent_id, goal_id = path_id(call.req, "agent_id"), path_id(call.req, "goal_id")
        body = parse_body(call.req, GoalChanges)
        update = GoalUpdate.model_validate({**body.model_dump(exclude_unset=True), "id": goal_id})
        change = await call.manager.update_goal(agent_id, update)
        return call.respond(Goal.model_validate(change.value), 200 if change.settled else 202)

    async def delete_goal(self, call: Call) -> func.HttpResponse:
        agent_id, goal_id = path_id(call.req, "agent_id"), path_id(call.req, "goal_id")
        change = await call.manager.remove_goal(agent_id, goal_id)
        return call.respond(None, 204) if change.settled else call.respond(change.value, 202)

    # ------------------------------------------------------------------------------ events
    async def post_event(self, call: Call) -> func.HttpResponse:
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

    async def publish_event(self, call: Call) -> func.HttpResponse:
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

    async def alignment(self, call: Call) -> func.HttpResponse:
        agent_id = path_id(call.req, "agent_id")
        body = parse_body(call.req, AlignmentRequest)
        result = await call.manager.evaluate_alignment(agent_id, body.action)
        return call.respond(AlignmentResponse(agent_id=agent_id, **result.as_dict()))

    # ------------------------------------------------------------------------------ service
    async def health(self, call: Call) -> func.HttpResponse:
        from aos.functions.health import check_storage

        storage = await check_storage(self.runtime)
        healthy = all(v == "ok" for v in storage.values())
        body = Health(status="ok" if healthy else "degraded", storage=storage, version=VERSION)
        return call.respond(body, 200 if healthy else 503)

    async def openapi(self, call: Call) -> func.HttpResponse:
        from aos.api.openapi import openapi_document

        server = link(call.req, "").rstrip("/")
        return call.respond(openapi_document(server=server, kinds=self.runtime.kinds))

    # ------------------------------------------------------------------------------ letters
    async def list_deadletters(self, call: Call) -> func.HttpResponse:
        return await self._list_letters(call, "deadletter")

    async def get_deadletter(self, call: Call) -> func.HttpResponse:
        return await self._get_letter(call, "deadletter")

    async def replay_deadletter(self, call: Call) -> func.HttpResponse:
        return await self._replay_letter(call, "deadletter")

    async def list_poison(self, call: Call) -> func.HttpResponse:
        return await self._list_letters(call, "poison")

    async def get_poison(self, call: Call) -> func.HttpResponse:
        return await self._get_letter(call, "poison")

    async def replay_poison(self, call: Call) -> func.HttpResponse:
        return await self._replay_letter(call, "poison")

    async def _list_letters(self, call: Call, queue: LetterQueue) -> func.HttpResponse:
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

    async def _get_letter(self, call: Call, queue: LetterQueue) -> func.HttpResponse:
        letter = await call.letters.get(queue, path_id(call.req, "letter_id"))
        return call.respond(_letter_item(letter))

    async def _replay_letter(self, call: Call, queue: LetterQueue) -> func.HttpResponse:
        replayed = await call.letters.replay(queue, path_id(call.req, "letter_id"))
        return call.respond(LetterReplayed(id=replayed.id, event_id=replayed.event_id), 202)

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _agent_answer(call: Call, change: Change, status: int) -> func.HttpResponse:
        entry: IndexEntry = change.value
        location = link(call.req, f"agents/{entry.agent_id}")
        body = AgentResource.model_validate(entry.as_resource())
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
