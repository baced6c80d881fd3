"""Azure SDK clients for a ``StorageConnection``, with retry settings that fail fast.

The SDKs' default retry policy keeps retrying a refused connection for about 80 seconds per call;
an HTTP request or a health check should fail in seconds instead, and let the caller (or the queue
trigger's own retry) decide what to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from aos.settings import StorageConnection

if TYPE_CHECKING:
    from azure.data.tables import TableClient as SyncTableClient
    from azure.data.tables.aio import TableClient
    from azure.storage.queue import QueueClient as SyncQueueClient
    from azure.storage.queue.aio import QueueClient

__all__ = [
    "REQUEST_HOOKS",
    "queue_client",
    "sync_queue_client",
    "sync_table_client",
    "table_client",
]

OPTIONS: dict[str, Any] = {
    "retry_total": 3,
    "retry_backoff_factor": 0.2,
    "retry_backoff_max": 2,
    "connection_timeout": 5,
    "read_timeout": 20,
}


_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}

REQUEST_HOOKS: list[Callable[[Any], None]] = []
"""Functions called with each request (an azure-core ``PipelineRequest``) of every client created
while they are in this list: how a test counts the storage requests the app makes per event
(``tests/integration/test_request_counts.py``). Empty by default, and then clients are built
exactly as without it, so the hook costs the default path nothing. The table SDK takes them as a
``per_call_policies`` policy; the queue SDK ignores that option and takes ``raw_request_hook``."""


def _call_hooks(request: Any) -> None:
    for hook in REQUEST_HOOKS:
        hook(request)


def _hook_options(cls: Any) -> dict[str, Any]:
    if not REQUEST_HOOKS:
        return {}
    if cls.__module__.startswith("azure.storage.queue"):
        return {"raw_request_hook": _call_hooks}
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class _Hooks(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            _call_hooks(request)

    return {"per_call_policies": [_Hooks()]}


def _transport_options() -> dict[str, Any]:
    """The HTTP transports (requests, aiohttp) look for proxy settings in the environment on every
    request, a walk over ``os.environ`` that is about a tenth of a table write's client CPU. With
    no proxy variable set there is nothing to find, so they are told not to look; with one set,
    they honour it as usual."""
    if any(name.lower() in _PROXY_VARIABLES for name in os.environ):
        return {}
    return {"use_env_settings": False}


def queue_client(connection: StorageConnection, queue_name: str) -> QueueClient:
    from azure.storage.queue.aio import QueueClient

    return cast(
        "QueueClient", _client(QueueClient, connection, connection.queue_endpoint, queue_name)
    )


def table_client(connection: StorageConnection, table_name: str) -> TableClient:
    from azure.data.tables.aio import TableClient

    return cast(
        "TableClient", _client(TableClient, connection, connection.table_endpoint, table_name)
    )


def sync_table_client(connection: StorageConnection, table_name: str) -> SyncTableClient:
    """A synchronous client, for code that runs on a worker thread (the entity function)."""
    from azure.data.tables import TableClient as SyncTableClient

    return cast(
        "SyncTableClient",
        _client(SyncTableClient, connection, connection.table_endpoint, table_name, sync=True),
    )


def sync_queue_client(connection: StorageConnection, queue_name: str) -> SyncQueueClient:
    """A synchronous queue client, for the entity function's effects (a worker thread)."""
    from azure.storage.queue import QueueClient as SyncQueueClient

    return cast(
        "SyncQueueClient",
        _client(SyncQueueClient, connection, connection.queue_endpoint, queue_name, sync=True),
    )


def _client(
    cls: Any, connection: StorageConnection, endpoint: str | None, name: str, *, sync: bool = False
) -> Any:
    """From the connection string (Azurite, keys) or from the endpoint and an Entra credential."""
    connection.require()
    options = {**OPTIONS, **_transport_options(), **_hook_options(cls)}
    if connection.connection_string:
        return cls.from_connection_string(connection.connection_string, name, **options)
    credential = connection.credential(sync=sync)
    return cls(str(endpoint), name, credential=credential, **options)
