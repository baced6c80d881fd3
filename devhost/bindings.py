"""Values for the non-trigger bindings of a function: durable clients, `func.Out` outputs.

The worker passes a durable client binding as a JSON string, and a `func.Out` for each output
binding, whose value the host writes only after the function returned successfully. The local host
supports the output bindings an app on queues needs (`queue`, and `http` for HTTP responses).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

from devhost.app_loader import FunctionSpec
from devhost.config import resolve_setting_refs

__all__ = ["LocalOut", "OutputWriter", "prepare_bindings"]

log = logging.getLogger("devhost.bindings")


class LocalOut(func.Out[Any]):
    """A `func.Out` that records what the function set."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


QueueSender = Callable[[str, str, str], Any]  # (connection setting, queue, content) -> awaitable


class OutputWriter:
    """Writes the output bindings after a successful invocation."""

    def __init__(self, spec: FunctionSpec, outs: dict[str, LocalOut], encoding: str) -> None:
        self._spec = spec
        self._outs = outs
        self._encoding = encoding

    def http_response(self) -> Any:
        for binding in self._spec.bindings_of("http"):
            name = binding.get("name")
            if name in self._outs:
                return self._outs[name].get()
        return None

    async def flush(self, send: QueueSender) -> None:
        for binding in self._spec.bindings_of("queue"):
            if str(binding.get("direction", "")).upper() != "OUT":
                continue
            value = self._outs[binding["name"]].get()
            if value is None:
                continue
            queue = resolve_setting_refs(str(binding["queueName"])).lower()
            connection = str(binding.get("connection") or "AzureWebJobsStorage")
            for item in value if isinstance(value, list) else [value]:
                await send(connection, queue, self._encode(item))

    def _encode(self, item: Any) -> str:
        if isinstance(item, bytes):
            raw = item
        elif isinstance(item, str):
            raw = item.encode()
        else:
            raw = json.dumps(item).encode()
        if self._encoding == "base64":
            return base64.b64encode(raw).decode()
        return raw.decode()


def prepare_bindings(
    spec: FunctionSpec, client_json: Callable[[str | None], str], encoding: str
) -> tuple[dict[str, Any], OutputWriter]:
    """Keyword arguments for the non-trigger bindings, and the writer for its outputs."""
    kwargs: dict[str, Any] = {}
    outs: dict[str, LocalOut] = {}
    for binding in spec.bindings:
        name = str(binding.get("name"))
        kind = binding.get("type")
        direction = str(binding.get("direction", "")).upper()
        if kind == "durableClient":
            kwargs[name] = client_json(binding.get("taskHub"))
        elif direction == "OUT" and name != "$return":
            outs[name] = LocalOut()
            kwargs[name] = outs[name]
            if kind not in ("queue", "http"):
                log.warning("%s: output binding type %r is ignored locally", spec.name, kind)
        elif direction == "IN" and name not in kwargs:
            log.warning("%s: input binding type %r is not supported locally", spec.name, kind)
    return kwargs, OutputWriter(spec, outs, encoding)
