"""Azure SDK clients for a ``StorageConnection``, with retry settings that fail fast.

The SDKs' default retry policy keeps retrying a refused connection for about 80 seconds per call;
an HTTP request or a health check should fail in seconds instead, and let the caller (or the queue
trigger's own retry) decide what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aos.settings import StorageConnection

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient, TableServiceClient
    from azure.storage.queue.aio import QueueClient

__all__ = ["queue_client", "table_client", "table_service"]

RETRY = {"retry_total": 3, "retry_backoff_factor": 0.2, "retry_backoff_max": 2}
TIMEOUTS = {"connection_timeout": 5, "read_timeout": 20}


def _options(connection: StorageConnection) -> dict[str, Any]:
    return {**RETRY, **TIMEOUTS}


def queue_client(connection: StorageConnection, queue_name: str) -> QueueClient:
    from azure.storage.queue.aio import QueueClient

    if connection.connection_string:
        return QueueClient.from_connection_string(
            connection.connection_string, queue_name, **_options(connection)
        )
    return QueueClient(
        str(connection.queue_endpoint),
        queue_name,
        credential=connection.credential(),
        **_options(connection),
    )


def table_service(connection: StorageConnection) -> TableServiceClient:
    from azure.data.tables.aio import TableServiceClient

    if connection.connection_string:
        return TableServiceClient.from_connection_string(
            connection.connection_string, **_options(connection)
        )
    return TableServiceClient(
        str(connection.table_endpoint), credential=connection.credential(), **_options(connection)
    )


def table_client(connection: StorageConnection, table_name: str) -> TableClient:
    from azure.data.tables.aio import TableClient

    if connection.connection_string:
        return TableClient.from_connection_string(
            connection.connection_string, table_name, **_options(connection)
        )
    return TableClient(
        str(connection.table_endpoint),
        table_name,
        credential=connection.credential(),
        **_options(connection),
    )
