"""Settings the host reads: local.settings.json `Values`, host.json, and `%SETTING%` references.

The Functions host resolves `%NAME%` in binding properties from app settings, reads its trigger
tuning from host.json, and (under Core Tools) loads local.settings.json into the environment. The
local host does the same so `function_app.py` sees the same configuration in both places.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from devhost.errors import ConfigurationError

__all__ = [
    "DurableOptions",
    "HostConfig",
    "QueueOptions",
    "load_host_json",
    "load_local_settings",
    "parse_timespan",
    "resolve_setting_refs",
]

_REF = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def parse_timespan(value: str | int | float, *, setting: str) -> timedelta:
    """Parse a .NET TimeSpan as host.json writes it (`[d.]hh:mm:ss[.fff]`)."""
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _TIMESPAN.match(value.strip())
    if not match:
        raise ConfigurationError(f"{setting}: {value!r} is not a TimeSpan like '00:00:10'")
    days, hours, minutes, seconds, fraction = match.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds) + float(f"0.{fraction}" if fraction else 0),
    )


def resolve_setting_refs(value: str, env: Mapping[str, str] | None = None) -> str:
    """Replace `%NAME%` with the app setting NAME, as binding expressions are resolved."""
    source = os.environ if env is None else env

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in source:
            raise ConfigurationError(f"app setting {name!r} (referenced as %{name}%) is not set")
        return source[name]

    return _REF.sub(lookup, value)


def load_local_settings(
    root: Path, env: MutableMapping[str, str] | None = None
) -> tuple[Path | None, dict[str, str]]:
    """Load `Values` from local.settings.json (else the .example) into `env`; set values win.

    Returns the file used and the values it added.
    """
    target = os.environ if env is None else env
    for name in ("local.settings.json", "local.settings.json.example"):
        path = root / name
        if path.exists():
            break
    else:
        return None, {}
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    except (ValueError, AttributeError) as exc:
        raise ConfigurationError(f"{path}: not a JSON object with 'Values': {exc}") from exc
    added: dict[str, str] = {}
    for key, value in values.items():
        if key not in target:
            target[key] = added[key] = str(value)
    return path, added


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` in host.json, with the Functions host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int | None = None  # default: batch_size / 2
    max_polling_interval: timedelta = timedelta(minutes=1)
    visibility_timeout: timedelta = timedelta(0)
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @property
    def threshold(self) -> int:
        return (
            self.batch_size // 2 if self.new_batch_threshold is None else self.new_batch_threshold
        )


@dataclass(frozen=True)
class DurableOptions:
    """`extensions.durableTask` in host.json (the parts the local host honours)."""

    hub_name: str = "TestHubName"
    max_entity_operation_batch_size: int = 50
    max_concurrent_orchestrator_functions: int = 10 * (os.cpu_count() or 1)
    max_concurrent_activity_functions: int = 10 * (os.cpu_count() or 1)


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()
    durable: DurableOptions = DurableOptions()


def _get(section: Mapping[str, Any], key: str, default: Any) -> Any:
    # host.json keys are case-insensitive in the Functions host.
    for name, value in section.items():
        if name.lower() == key.lower():
            return value
    return default


def load_host_json(path: Path, env: Mapping[str, str] | None = None) -> HostConfig:
    """Read host.json; `%SETTING%` in the hub name is resolved from the environment."""
    if not path.exists():
        return HostConfig()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigurationError(f"{path}: invalid JSON: {exc}") from exc
    ext = _get(doc, "extensions", {}) or {}
    http = _get(ext, "http", {}) or {}
    queues = _get(ext, "queues", {}) or {}
    durable = _get(ext, "durableTask", {}) or {}
    q_default = QueueOptions()
    threshold = _get(queues, "newBatchThreshold", None)
    queue_options = QueueOptions(
        batch_size=int(_get(queues, "batchSize", q_default.batch_size)),
        new_batch_threshold=None if threshold is None else int(threshold),
        max_polling_interval=parse_timespan(
            _get(queues, "maxPollingInterval", 60), setting="queues.maxPollingInterval"
        ),
        visibility_timeout=parse_timespan(
            _get(queues, "visibilityTimeout", 0), setting="queues.visibilityTimeout"
        ),
        max_dequeue_count=int(_get(queues, "maxDequeueCount", q_default.max_dequeue_count)),
        message_encoding=str(_get(queues, "messageEncoding", "base64")).lower(),
    )
    if queue_options.message_encoding not in ("base64", "none"):
        raise ConfigurationError("queues.messageEncoding must be 'base64' or 'none'")
    hub = resolve_setting_refs(str(_get(durable, "hubName", "TestHubName")), env)
    d_default = DurableOptions()
    return HostConfig(
        route_prefix=str(_get(http, "routePrefix", "api")).strip("/"),
        queues=queue_options,
        durable=DurableOptions(
            hub_name=hub,
            max_entity_operation_batch_size=int(
                _get(
                    durable,
                    "maxEntityOperationBatchSize",
                    d_default.max_entity_operation_batch_size,
                )
            ),
            max_concurrent_orchestrator_functions=int(
                _get(
                    durable,
                    "maxConcurrentOrchestratorFunctions",
                    d_default.max_concurrent_orchestrator_functions,
                )
            ),
            max_concurrent_activity_functions=int(
                _get(
                    durable,
                    "maxConcurrentActivityFunctions",
                    d_default.max_concurrent_activity_functions,
                )
            ),
        ),
    )
