"""`DevHost`: the local stand-in for the Functions host, as one async context manager.

It indexes the function app once, serves HTTP triggers and the durable client's HTTP API on one
aiohttp server, polls the queues of queue triggers, and runs entities through `EntityRuntime`. Tests
use it in-process; `python -m devhost` wraps it with Azurite and signal handling.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.core.exceptions import ResourceExistsError

from devhost.app_loader import FunctionSpec, functions_of, load_app
from devhost.azurite import REPO_ROOT
from devhost.bindings import prepare_bindings
from devhost.config import HostConfig, load_host_json, resolve_setting_refs
from devhost.durable_api import client_binding, durable_routes
from devhost.entity_runtime import EntityRuntime, UnknownEntityError
from devhost.entity_store import EntityId, EntityStore
from devhost.errors import ConfigurationError
from devhost.host_guard import HostGuard, allowed_hosts_from_env
from devhost.http_server import MAX_BODY, http_functions, http_handler
from devhost.invoker import invoke
from devhost.orchestration_runtime import OrchestrationRuntime
from devhost.orchestration_store import OrchestrationStore
from devhost.queue_listener import QueueListener, queue_client
from devhost.storage_names import table_name

__all__ = ["DevHost", "entities_table_name", "orchestrations_table_name"]

log = logging.getLogger("devhost")
STORAGE_SETTING = "AzureWebJobsStorage"


def entities_table_name(hub: str) -> str:
    """The table the local host keeps its entities in (one per task hub)."""
    return table_name("DevHost", hub, "Entities")


def orchestrations_table_name(hub: str) -> str:
    """The table the local host keeps orchestration instances, history and messages in."""
    return table_name("DevHost", hub, "Orchestrations")


class DevHost:
    """Run a function app locally against Azure Storage (Azurite).

    `app`: a module name (imported from `root`), a module, or the FunctionApp object.
    `connection_string`: the storage account for AzureWebJobsStorage, the durable task hub and every
    trigger whose connection setting is unset or `UseDevelopmentStorage=true`.
    `http_port=0` picks a free port; `queues=False` / `http=False` leave those parts off.
    `allowed_hosts`: Host names served besides localhost, 127.0.0.1 and [::1] (default: the
    `AOS_DEVHOST_ALLOWED_HOSTS` environment variable; see `devhost.host_guard`).
    """

    def __init__(
        self,
        app: str | ModuleType | Any,
        *,
        connection_string: str,
        http_host: str = "127.0.0.1",
        http_port: int = 0,
        config: HostConfig | None = None,
        hub: str | None = None,
        root: Path = REPO_ROOT,
        queues: bool = True,
        http: bool = True,
        queue_lease_seconds: int = 30,
        entity_concurrency: int = 8,
        allowed_hosts: tuple[str, ...] | None = None,
    ) -> None:
        self.guard = HostGuard(allowed_hosts_from_env() if allowed_hosts is None else allowed_hosts)
        self.app = load_app(app, root)
        self.functions: list[FunctionSpec] = functions_of(self.app)
        self.connection_string = connection_string
        self.config = config if config is not None else load_host_json(root / "host.json")
        self.hub = hub or self.config.durable.hub_name
        self._http_host = http_host
        self._http_port = http_port
        self._serve_http = http
        self._serve_queues = queues
        self._lease = queue_lease_seconds
        entity_specs = {
            str(s.trigger.get("entityName") or s.name): s
            for s in self.functions
            if s.trigger_type == "entityTrigger"
        }
        self.store = EntityStore(connection_string, entities_table_name(self.hub))
        self.runtime = EntityRuntime(
            self.store,
            entity_specs,
            max_batch_size=self.config.durable.max_entity_operation_batch_size,
            concurrency=entity_concurrency,
        )
        durable = self.config.durable
        self.orchestration_store = OrchestrationStore(
            connection_string, orchestrations_table_name(self.hub)
        )
        self.orchestrations = OrchestrationRuntime(
            self.orchestration_store,
            self.functions,
            invoke_activity=self._invoke_activity,
            send_to_entity=self._send_to_entity,
            release_entity_messages=self._release,
            max_orchestrators=durable.max_concurrent_orchestrator_functions,
            max_activities=durable.max_concurrent_activity_functions,
        )
        self.runtime.reply_sink = self.orchestrations.entity_reply
        self._entities_started = False
        self.listeners: list[QueueListener] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self._senders: dict[tuple[str, str], Any] = {}

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1]) if self.base_url else 0

    def storage_for(self, setting: str | None) -> str:
        """The connection string a binding's `connection` setting names."""
        name = setting or STORAGE_SETTING
        if name == STORAGE_SETTING:
            return self.connection_string
        value = os.environ.get(name) or os.environ.get(f"{name}__connectionString")
        if value is None:
            raise ConfigurationError(f"connection setting {name!r} is not set")
        return self.connection_string if value.startswith("UseDevelopmentStorage=") else value

    def client_binding(self, task_hub: str | None = None) -> str:
        """The durable client binding JSON, for calling durable-client functions directly."""
        return json.dumps(client_binding(self.base_url, task_hub or self.hub))

    async def invoke(self, function_name: str, **trigger: Any) -> Any:
        """Invoke a function as its trigger would (bindings, `context`, outputs), e.g. in tests."""
        spec = next((s for s in self.functions if s.name == function_name), None)
        if spec is None:
            raise KeyError(f"no function named {function_name!r}")
        return await self._invoke(spec, trigger)

    async def _invoke(self, spec: FunctionSpec, trigger: dict[str, Any]) -> Any:
        extra, outputs = prepare_bindings(
            spec, self.client_binding, self.config.queues.message_encoding
        )
        result = await invoke(spec, {**trigger, **extra})
        await outputs.flush(self._send)
        if result is None and spec.trigger_type == "httpTrigger":
            result = outputs.http_response()
        return result

    async def _invoke_activity(self, spec: FunctionSpec, value: Any) -> Any:
        return await self._invoke(spec, {str(spec.trigger["name"]): value})

    async def _send_to_entity(self, item: dict[str, Any], staged: list[Any]) -> None:
        """Store an orchestration's `signal_entity`/`call_entity` for its entity, held: the
        caller releases it (`_release`) once the message's outbox row is deleted. Before the
        entity runtime has started (recovery at start-up) the signal row is written directly."""
        _, name, key = str(item["entity"]).split("@", 2)
        reply = item.get("reply")
        input_text = json.dumps(item.get("input") if item.get("input") is not None else "null")
        try:
            if not self.runtime.has_entity(name):
                raise UnknownEntityError(f"no entity function named {name!r}")
            if not self._entities_started:
                signal = self.store.new_signal(str(item["id"]), str(item["operation"]), input_text)
                signal.seq, signal.reply = str(item["seq"]), json.dumps(reply) if reply else None
                with contextlib.suppress(ResourceExistsError):
                    await self.store.add_signal(EntityId.of(name, key), signal)
                return
            staged_signal = await self.runtime.stage(
                name,
                key,
                str(item["operation"]),
                input_text,
                signal_id=str(item["id"]),
                seq=str(item["seq"]),
                reply=json.dumps(reply) if reply else None,
            )
            if staged_signal is not None:
                staged.append((name, key, staged_signal))
        except UnknownEntityError as exc:
            log.warning("orchestration message to %s dropped: %s", item["entity"], exc)
            if reply:
                failure = {"isError": True, "result": str(exc)}
                await self.orchestrations.entity_reply(reply, str(item["id"]), failure)

    def _release(self, staged: list[Any]) -> None:
        for name, key, signal in staged:
            self.runtime.release(name, key, signal)

    async def _send(self, connection: str, queue: str, content: str) -> None:
        key = (connection, queue)
        client = self._senders.get(key)
        if client is None:
            client = self._senders[key] = queue_client(self.storage_for(connection), queue)
            with contextlib.suppress(Exception):
                await client.create_queue()
        await client.send_message(content)
        account = self.storage_for(connection)
        for listener in self.listeners:  # as the queues extension's SharedQueueWatcher does
            if listener.queue_name == queue and listener.connection_string == account:
                listener.notify()

    async def start(self) -> DevHost:
        await self.store.open()
        await self.orchestration_store.open()
        # Order matters for exactly-once: messages orchestrations sent but did not finish
        # delivering are stored for their entities first, then the entities resume everything
        # stored, then the orchestrations resume.
        await self.orchestrations.recover()
        await self.runtime.start()
        self._entities_started = True
        await self.orchestrations.resume()
        web_app = web.Application(client_max_size=MAX_BODY, middlewares=[self.guard.middleware])
        web_app.add_routes(durable_routes(self.runtime, self.orchestrations))
        if self._serve_http:
            functions = http_functions(self.functions, self.config.route_prefix)
            handler = http_handler(functions, self._invoke)
            web_app.router.add_route("*", "/{tail:.*}", handler)
        self._runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._http_host, self._http_port)
        await site.start()
        port = int(self._runner.addresses[0][1])
        shown = "localhost" if self._http_host in ("0.0.0.0", "127.0.0.1") else self._http_host
        self.base_url = f"http://{shown}:{port}"
        if self._serve_queues:
            for spec in self.functions:
                if spec.trigger_type != "queueTrigger":
                    continue
                queue = resolve_setting_refs(str(spec.trigger["queueName"])).lower()
                listener = QueueListener(
                    spec,
                    self.storage_for(spec.trigger.get("connection")),
                    queue,
                    self.config.queues,
                    self._invoke,
                    lease_seconds=self._lease,
                )
                await listener.start()
                self.listeners.append(listener)
        for spec in self.functions:
            if spec.trigger_type not in (
                "httpTrigger",
                "queueTrigger",
                "entityTrigger",
                "orchestrationTrigger",
                "activityTrigger",
            ):
                log.warning(
                    "%s: %s triggers are not run by the local host", spec.name, spec.trigger_type
                )
        return self

    async def wait_idle(self) -> None:
        """Wait until no entity signal is pending; bound it with `asyncio.timeout(...)`."""
        await self.runtime.wait_idle()

    async def stop(self) -> None:
        """Stop polling, finish running work, close every client (including the SDK's session)."""
        for listener in self.listeners:
            await listener.stop()
        self.listeners.clear()
        await self.orchestrations.stop()
        await self.runtime.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for client in self._senders.values():
            await client.close()
        self._senders.clear()
        await self.store.close()
        await self.orchestration_store.close()
        closer = getattr(self.app, "aclose", None)
        if callable(closer):  # an app may hold clients of its own (AOS: its storage clients)
            await closer()
        await close_durable_client_session()

    async def __aenter__(self) -> DevHost:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def close_durable_client_session() -> None:
    """Close the durable SDK's module-global aiohttp session before this event loop ends."""
    from azure.durable_functions.models.utils import http_utils

    await http_utils._close_session()


_ = func  # azure.functions must be importable before the app is loaded
