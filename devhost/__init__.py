"""A local stand-in for the Azure Functions host, for development and tests (not deployed).

Public API for tests:

    Azurite(...)                 start/stop the storage emulator (`.connection_string`)
    DevHost(app, connection_string=..., http_port=0, config=..., hub=...)
        async with DevHost(...) as host:
            host.base_url            http://localhost:<port>; HTTP triggers under /api
            host.client_binding()    durable client binding JSON for `durable_client_input`
            await host.invoke(name, **trigger_args)   call a function with its bindings
            await host.wait_idle()   every accepted entity signal applied and persisted
            await host.orchestrations.wait_for(instance_id)   its terminal status committed
    client_binding(base_url, hub)    the binding dict itself
    build_batch_request(...)         the entity batch JSON the Functions host sends
"""

from devhost.azurite import Azurite, AzuriteError, AzuriteNotInstalledError, AzuriteStartError
from devhost.durable_api import client_binding
from devhost.entity_runtime import build_batch_request
from devhost.errors import AppLoadError, ConfigurationError, DevHostError, EntityStateTooLargeError
from devhost.host import DevHost, entities_table_name, orchestrations_table_name

__all__ = [
    "AppLoadError",
    "Azurite",
    "AzuriteError",
    "AzuriteNotInstalledError",
    "AzuriteStartError",
    "ConfigurationError",
    "DevHost",
    "DevHostError",
    "EntityStateTooLargeError",
    "build_batch_request",
    "client_binding",
    "entities_table_name",
    "orchestrations_table_name",
]
