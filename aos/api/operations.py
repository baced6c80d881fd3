"""What an HTTP operation is: the request a handler gets (``Call``), what it may use of the app
(``Services``), and how the table of operations describes a route (``ApiOperation``,
``QueryParam``). The table itself is ``aos.api.http.OPERATIONS``; the OpenAPI document
(``aos.api.openapi``) is built from it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import azure.functions as func
from pydantic import BaseModel

from aos.agents import AgentKinds
from aos.api.paths import FUNCTIONS
from aos.api.requests import json_response
from aos.services.agents import AgentService
from aos.services.letters import DeadLetters
from aos.services.messages import MessageService

__all__ = ["ApiOperation", "Call", "Handler", "QueryParam", "Services"]


class Services(Protocol):
    """What the handlers need from the app (``aos.functions.container.AppRuntime`` provides it)."""

    kinds: AgentKinds

    def manager(self, durable_client: Any) -> AgentService: ...
    def messages(self, durable_client: Any) -> MessageService: ...
    def dead_letters(self) -> DeadLetters: ...
    async def storage_health(self) -> dict[str, str]:
        """``{"queues": "ok" | reason, "tables": "ok" | reason}``."""
        ...


@dataclass
class Call:
    """One request with what its handler needs."""

    req: func.HttpRequest
    runtime: Services
    client: Any
    correlation: str

    @cached_property
    def manager(self) -> AgentService:
        return self.runtime.manager(self.client)

    @cached_property
    def messages(self) -> MessageService:
        return self.runtime.messages(self.client)

    @cached_property
    def letters(self) -> DeadLetters:
        return self.runtime.dead_letters()

    def respond(self, body: Any, status: int = 200, **headers: str) -> func.HttpResponse:
        return json_response(body, status=status, correlation=self.correlation, headers=headers)


Handler = Callable[[Call], Awaitable[func.HttpResponse]]


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
    """The Azure Function that serves the route (``aos.api.paths.FUNCTIONS``)."""
    method: str
    handler: Handler
    summary: str
    status: int
    response: type[BaseModel] | None = None
    request: type[BaseModel] | None = None
    errors: tuple[int, ...] = (400,)
    query: tuple[QueryParam, ...] = ()
    also: tuple[int, ...] = ()
    """Other success statuses, answered with the same model: 202 when the entity has not applied
    the change within the settle time, 201 when a PUT created the agent."""

    @property
    def route(self) -> str:
        return FUNCTIONS[self.function].route
