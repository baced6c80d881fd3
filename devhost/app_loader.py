"""Import a function app and list its functions, the way the Python worker indexes them.

`FunctionApp.get_functions()` works once per app object (a second call fails on duplicate names),
so the result is cached per app object and shared by everything in the process.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from devhost.errors import AppLoadError

__all__ = ["FunctionSpec", "functions_of", "load_app"]

_cache: dict[int, tuple[Any, list[FunctionSpec]]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the host sees it: its trigger, other bindings and the callable to invoke."""

    name: str
    trigger: dict[str, Any]
    bindings: tuple[dict[str, Any], ...]
    func: Callable[..., Any]
    parameters: tuple[str, ...] = field(default=())

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    def bindings_of(self, binding_type: str) -> list[dict[str, Any]]:
        return [b for b in self.bindings if b.get("type") == binding_type]


def load_app(target: str | ModuleType | Any, root: Path | None = None) -> Any:
    """Return the FunctionApp object from a module name, a module, or the app itself."""
    if isinstance(target, str):
        if root is not None and str(root) not in sys.path:
            sys.path.insert(0, str(root))
        try:
            target = importlib.import_module(target)
        except Exception as exc:
            raise AppLoadError(f"cannot import {target!r}: {exc!r}") from exc
    if isinstance(target, ModuleType):
        apps = [v for v in vars(target).values() if hasattr(v, "get_functions")]
        apps = [v for v in apps if not isinstance(v, type)]
        if len(apps) != 1:
            raise AppLoadError(
                f"{target.__name__} must define exactly one FunctionApp object, found {len(apps)}"
            )
        return apps[0]
    if not hasattr(target, "get_functions"):
        raise AppLoadError(f"{target!r} is not a FunctionApp")
    return target


def functions_of(app: Any) -> list[FunctionSpec]:
    """Index `app` once per process (cached): the worker's one `get_functions()` call."""
    with _lock:
        cached = _cache.get(id(app))
        if cached is not None and cached[0] is app:
            return cached[1]
        try:
            functions = app.get_functions()
        except Exception as exc:
            raise AppLoadError(f"indexing the function app failed: {exc!r}") from exc
        specs = [_spec(f) for f in functions]
        _cache[id(app)] = (app, specs)
        return specs


def _spec(function: Any) -> FunctionSpec:
    doc = json.loads(function.get_function_json())
    bindings = tuple(doc["bindings"])
    triggers = [b for b in bindings if str(b.get("type", "")).endswith("Trigger")]
    if len(triggers) != 1:
        raise AppLoadError(f"function {function.get_function_name()} needs exactly one trigger")
    func = function.get_user_function()
    try:
        parameters = tuple(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        parameters = ()
    return FunctionSpec(
        name=function.get_function_name(),
        trigger=triggers[0],
        bindings=tuple(b for b in bindings if b is not triggers[0]),
        func=func,
        parameters=parameters,
    )
