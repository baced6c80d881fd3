"""Drive the ``agent`` entity exactly as the Functions host does: batch JSON in, batch JSON out.

The function is the one registered on the real app object, so the SDK's own entity handler
(``Entity.create(fn).handle``) runs, with operation input encoded twice as the extension sends it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from azure.functions._durable_functions import EntityContext

from aos import AgentKinds, Limits
from aos.domain.history import HistoryWriter
from aos.functions.app import create_app
from aos.functions.container import AppRuntime
from aos.settings import Settings, StorageConnection


def make_app(
    limits: Limits | None = None,
    kinds: AgentKinds | None = None,
    history: HistoryWriter | None = None,
) -> Any:
    """The app without storage: the entity's history goes to ``history`` (or nowhere)."""
    settings = Settings(
        storage=StorageConnection(problem="unit tests use no storage"), limits=limits or Limits()
    )
    runtime = AppRuntime(kinds, load_settings=lambda: settings, history_writer=history)
    return create_app(runtime=runtime)


def entity_handle(app: Any) -> Any:
    """The registered entity function's handle, as the worker gets it."""
    (function,) = [f for f in app.get_functions() if f.get_function_name() == "agent"]
    return function.get_user_function()


def event(event_id: str, type_: str = "order.created", **data: Any) -> dict[str, Any]:
    """A ``handle_event`` input: ``data`` from the keywords, ``{"n": 1}`` without any."""
    return {"event_id": event_id, "type": type_, "data": data or {"n": 1}}


def operation(
    name: str | None, value: Any = None, *, missing_input: bool = False
) -> dict[str, Any]:
    op: dict[str, Any] = {"name": name, "signal": True, "id": uuid.uuid4().hex}
    if not missing_input:
        op["input"] = json.dumps(json.dumps(value)) if value is not None else None
    return op


@dataclass
class BatchResult:
    exists: bool
    state_text: str | None
    results: list[dict[str, Any]]

    @property
    def state(self) -> Any:
        return None if self.state_text is None else json.loads(self.state_text)

    def result(self, index: int) -> Any:
        raw = self.results[index]["result"]
        return None if raw is None else json.loads(raw)

    def error(self, index: int) -> str:
        entry = self.results[index]
        assert entry["isError"], f"operation {index} succeeded: {entry['result']}"
        return str(json.loads(entry["result"]))


@dataclass
class EntityDriver:
    """One entity instance; keeps its state string between batches like the host's storage."""

    handle: Any
    key: str = "agent-1"
    state_text: str | None = None
    exists: bool = False
    batches: list[BatchResult] = field(default_factory=list)

    @property
    def stored(self) -> str:
        """The stored state string (the entity must exist)."""
        assert self.state_text is not None, "the entity does not exist"
        return self.state_text

    def run(self, *ops: dict[str, Any]) -> BatchResult:
        body = {
            "self": {"name": "agent", "key": self.key},
            "state": self.state_text if self.exists else None,
            "exists": self.exists,
            "batch": list(ops),
        }
        out = json.loads(self.handle(EntityContext(json.dumps(body))))
        self.exists = out["entityExists"]
        self.state_text = out["entityState"] if self.exists else None
        result = BatchResult(self.exists, self.state_text, out["results"])
        self.batches.append(result)
        return result
