"""Call a user function the way the Python worker does: inject `context`, sync code in a thread.

The worker runs synchronous functions on a thread pool so that blocking code (storage SDK calls)
never stalls the host; async functions run on the event loop. A parameter named `context` that is
not a binding receives a `func.Context`.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Any

import azure.functions as func

from devhost.app_loader import FunctionSpec

__all__ = ["LocalContext", "invoke"]


class LocalContext(func.Context):
    """The `func.Context` the worker injects (invocation id, function name and directory)."""

    def __init__(self, function_name: str, invocation_id: str | None = None) -> None:
        self._invocation_id = invocation_id or str(uuid.uuid4())
        self._function_name = function_name

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return "."

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None

    @property
    def thread_local_storage(self) -> Any:
        return None


async def invoke(spec: FunctionSpec, kwargs: dict[str, Any]) -> Any:
    """Run `spec.func(**kwargs)`, adding `context` if the function asks for it."""
    binding_names = {b.get("name") for b in spec.bindings} | {spec.trigger.get("name")}
    if "context" in spec.parameters and "context" not in binding_names:
        kwargs = {**kwargs, "context": LocalContext(spec.name)}
    if spec.is_async:
        return await spec.func(**kwargs)
    return await asyncio.to_thread(functools.partial(spec.func, **kwargs))
