"""The two activities of a turn, without their bindings: one model step, one call of a kind's tool.

Both run at least once (a worker may die after the work and before the host records it), so a
model step may be paid twice in that rare case -- never on replay, which reads the recorded
answer -- and a kind's tool receives an idempotency key that is the same on every attempt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aos.agents.registry import AgentKinds
from aos.agents.thinking import describe_error, kind_tools
from aos.agents.tools import ToolContext, parse_arguments
from aos.errors import AOSError
from aos.ports.models import ChatModel, ModelError, ToolSpec

__all__ = ["model_step", "run_tool"]


async def model_step(
    payload: dict[str, Any], model_for: Callable[[str], ChatModel]
) -> dict[str, Any]:
    """Ask the agent's model (by ``adapter_name``) for one step. A retryable failure raises, so
    the activity's retry policy tries again; a final one is answered as ``{"error": ...}`` and
    fails the turn visibly."""
    model = model_for(str(payload.get("adapter_name") or "default"))
    tools = [
        ToolSpec(
            f["function"]["name"], f["function"].get("description", ""), f["function"]["parameters"]
        )
        for f in payload.get("tools") or []
    ]
    try:
        reply = await model.complete(payload["messages"], tools)
    except ModelError as exc:
        if exc.retryable:
            raise
        return {"error": str(exc), "status": exc.status}
    return reply.to_json()


async def run_tool(payload: dict[str, Any], kinds: AgentKinds) -> dict[str, Any]:
    """Run a kind's tool with the model's arguments: ``{"result": ...}``, or ``{"error": ...}``
    for the model to read (bad arguments, or the tool raised)."""
    name = str(payload.get("tool"))
    try:
        tool = kind_tools(kinds.resolve(str(payload.get("kind")))).get(name)
        if tool is None:
            return {"error": f"there is no tool named {name!r}"}
        arguments = parse_arguments(str(payload.get("arguments") or ""))
        context = ToolContext(
            agent_id=str(payload["agent_id"]),
            turn_id=str(payload["turn_id"]),
            idempotency_key=str(payload["idempotency_key"]),
        )
        result = await tool.invoke(context, arguments)
        json.dumps(result, allow_nan=False)
    except AOSError as exc:
        return {"error": describe_error(exc)}
    except (TypeError, ValueError) as exc:
        return {"error": f"{name} returned something that is not JSON: {exc}"}
    except Exception as exc:
        return {"error": f"{name} failed: {type(exc).__name__}: {str(exc)[:500]}"}
    return {"result": result}
