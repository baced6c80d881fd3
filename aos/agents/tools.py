"""Tools a thinking agent's model may call: the agent's own operations, and a kind's own functions.

Built-in tools (``BUILTIN_TOOLS``) are what an agent can already do to itself and the world --
update its state, add and update goals, decide, send, publish, remind, cancel a reminder. They run
inside the agent's entity, in order, through the same exactly-once path as a handler's effects.

A kind adds its own with ``@tool`` on a static function in its class body. The JSON schema the model sees
comes from the type hints, the description from the docstring; the function runs as an activity
(outside the entity, so it may do I/O) and receives a ``ToolContext`` first, whose
``idempotency_key`` is the same on every attempt of the same call: activities run at least once,
so a tool that pays or mails must use it (as a payment API's idempotency key, say)::

    class Buyer(GenericPurposeDrivenAgent):
        kind = "buyer"

        @tool(needs_approval=True)
        @staticmethod
        def place_order(call: ToolContext, sku: str, quantity: int = 1) -> dict[str, Any]:
            \"\"\"Order stock from the supplier.\"\"\"
            return supplier.order(sku, quantity, idempotency_key=call.idempotency_key)

A tool marked ``needs_approval`` pauses the turn until someone approves or refuses the call
(``POST /api/agents/{id}/turns/{turn_id}/approval``) or the approval times out.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, create_model

from aos.domain.chat import ToolSpec
from aos.domain.models import (
    MAX_INTERVAL_SECONDS,
    AgentId,
    EventType,
    GoalCreate,
    GoalUpdate,
    ReminderId,
    StateWrite,
    Timestamp,
)
from aos.errors import ConfigurationError, InvalidInputError

__all__ = [
    "BUILTIN_TOOLS",
    "GOAL_TOOLS",
    "Tool",
    "ToolContext",
    "builtin_tool_specs",
    "parse_arguments",
    "tool",
]

TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a kind's tool knows of the call: whose agent, which turn, and the key that is the
    same on every attempt of this call (``<turn_id>:<step>:<position>``)."""

    agent_id: str
    turn_id: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Tool:
    """A kind's tool: ``spec`` is what the model sees; ``invoke`` validates the model's arguments
    against the type hints and runs the function."""

    spec: ToolSpec
    needs_approval: bool
    function: Callable[..., Any]
    arguments: type[BaseModel]

    @property
    def name(self) -> str:
        return self.spec.name

    async def invoke(self, context: ToolContext, arguments: Mapping[str, Any]) -> Any:
        try:
            values = self.arguments.model_validate(dict(arguments))
        except ValidationError as exc:
            raise InvalidInputError.from_pydantic(
                exc, message=f"Invalid arguments for {self.name}"
            ) from exc
        result = self.function(
            context, **{k: getattr(values, k) for k in self.arguments.model_fields}
        )
        if inspect.isawaitable(result):
            result = await result
        return result


ToolFunction: TypeAlias = "Callable[..., Any] | staticmethod[..., Any]"


@overload
def tool(function: ToolFunction, /) -> Tool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, needs_approval: bool = False
) -> Callable[[ToolFunction], Tool]: ...


def tool(
    function: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    needs_approval: bool = False,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a static function in an agent class's body a tool its model may call (see the
    module docstring). Usable bare (``@tool``) or with options (``@tool(needs_approval=True)``),
    above ``@staticmethod``."""

    def wrap(fn: ToolFunction) -> Tool:
        plain = fn.__func__ if isinstance(fn, staticmethod) else fn
        return _make_tool(plain, name or plain.__name__, description, needs_approval)

    return wrap if function is None else wrap(function)


def _make_tool(
    fn: Callable[..., Any], name: str, description: str | None, needs_approval: bool
) -> Tool:
    import re

    if not re.fullmatch(TOOL_NAME_PATTERN, name):
        raise ConfigurationError(f"tool name {name!r} must match {TOOL_NAME_PATTERN}")
    if name in BUILTIN_TOOLS:
        raise ConfigurationError(f"tool name {name!r} is a built-in tool's")
    parameters = list(inspect.signature(fn).parameters.values())
    if not parameters:
        raise ConfigurationError(f"tool {name!r} must take a ToolContext as its first parameter")
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    for parameter in parameters[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ConfigurationError(f"tool {name!r}: *args and **kwargs have no schema")
        annotation = hints.get(parameter.name, Any)
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    arguments = create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    schema = arguments.model_json_schema()
    schema.pop("title", None)
    text = description or inspect.getdoc(fn) or name
    return Tool(ToolSpec(name, text.strip(), schema), needs_approval, fn, arguments)


def parse_arguments(text: str) -> dict[str, Any]:
    """A tool call's arguments as the model wrote them: a JSON object, or ``InvalidInputError``
    saying what is wrong (the model is told and may try again)."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"the arguments are not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInputError("the arguments must be a JSON object")
    return value


# ------------------------------------------------------------------------------ built-in tools
class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SendArgs(_Args):
    agent_id: AgentId
    type: EventType
    data: JsonValue = None


class PublishArgs(_Args):
    type: EventType
    data: JsonValue = None


class RemindArgs(_Args):
    reminder_id: ReminderId
    type: EventType
    data: JsonValue = None
    at: Timestamp | None = None
    after_seconds: float | None = Field(default=None, ge=0, le=MAX_INTERVAL_SECONDS)
    every_seconds: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_SECONDS)


class CancelReminderArgs(_Args):
    reminder_id: ReminderId


class DecideArgs(_Args):
    options: list[JsonValue] = Field(min_length=1, max_length=20)
    context: dict[str, JsonValue] = Field(default_factory=dict, max_length=32)


BUILTIN_TOOLS: dict[str, tuple[str, type[BaseModel]]] = {
    "update_state": ("Set one key of your key/value state to a JSON value.", StateWrite),
    "add_goal": ("Add a goal (a description; optionally status and progress).", GoalCreate),
    "update_goal": ("Change a goal's description, status, progress or metadata.", GoalUpdate),
    "decide": (
        "Choose among options by your purpose; answers the chosen option and why.",
        DecideArgs,
    ),
    "send": ("Send an event to another agent by its id.", SendArgs),
    "publish": ("Publish an event to every agent subscribed to its type.", PublishArgs),
    "remind": (
        "Wake yourself later with an event: at a time, after seconds, or every N seconds.",
        RemindArgs,
    ),
    "cancel_reminder": ("Cancel one of your reminders.", CancelReminderArgs),
}
"""name -> (description, arguments model)."""

GOAL_TOOLS = frozenset({"add_goal", "update_goal", "decide"})
"""Built-in tools only purpose-driven agents have."""


def builtin_tool_specs(*, purpose_driven: bool) -> list[ToolSpec]:
    specs = []
    for name, (description, model) in BUILTIN_TOOLS.items():
        if name in GOAL_TOOLS and not purpose_driven:
            continue
        schema = model.model_json_schema()
        schema.pop("title", None)
        specs.append(ToolSpec(name, description, schema))
    return specs
