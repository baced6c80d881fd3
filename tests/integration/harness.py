"""The AOS app under the local host, in-process, over a real Azurite: HTTP functions are called
with ``func.HttpRequest`` objects and the queue function with ``func.QueueMessage``, exactly as the
worker would; entity signals go through the SDK's ``DurableOrchestrationClient`` to the host's
Durable HTTP API and run through the SDK's entity handler."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage as FuncQueueMessage
from azure.storage.queue.aio import QueueClient

from aos import AgentKinds, Limits, create_app
from aos.api.paths import FUNCTIONS
from aos.functions.container import AppRuntime
from aos.settings import Settings, StorageConnection
from devhost import DevHost
from devhost.config import DurableOptions, HostConfig, QueueOptions
from devhost.storage_names import UniqueName

ROUTES = {path.route: name for name, path in FUNCTIONS.items()}


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def _match(path: str) -> tuple[str, dict[str, str]]:
    """The function and route parameters for ``path`` (after /api/), as the host routes them."""
    parts = path.strip("/").split("/")
    for route, function in ROUTES.items():
        pattern = route.split("/")
        if len(pattern) == len(parts) and all(
            p.startswith("{") or p == part for p, part in zip(pattern, parts, strict=True)
        ):
            params = {p[1:-1]: part for p, part in zip(pattern, parts, strict=True) if p[0] == "{"}
            return function, params
    raise AssertionError(f"no route for {path}")


@dataclass
class Aos:
    host: DevHost
    runtime: AppRuntime
    settings: Settings
    connection_string: str

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        function, route_params = _match(path)
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        all_headers = {"content-type": "application/json"} if data else {}
        all_headers.update(headers or {})
        query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        request = func.HttpRequest(
            method=method,
            url=f"http://localhost:7071/api/{path}" + (f"?{query}" if query else ""),
            headers=all_headers,
            params=params or {},
            route_params=route_params,
            body=data,
        )
        response: func.HttpResponse = await self.host.invoke(function, req=request)
        return Response(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.get_body().decode(),
        )

    async def queued(self, queue: str | None = None) -> list[str]:
        """Receive and delete every message now on ``queue`` (the events queue by default)."""
        async with QueueClient.from_connection_string(
            self.connection_string, queue or self.settings.events_queue
        ) as client:
            with suppress(ResourceExistsError):
                await client.create_queue()
            texts = []
            async for message in client.receive_messages(messages_per_page=32):
                texts.append(str(message.content))
                await client.delete_message(message)
            return texts

    async def deliver(
        self, body: str | bytes, *, dequeue_count: int = 1, message_id: str | None = None
    ) -> None:
        """Run the queue-triggered function on one message, then wait for the entity. Pass the
        same ``message_id`` to redeliver a message (the queue keeps a message's id)."""
        message = FuncQueueMessage(  # type: ignore[no-untyped-call]
            id=message_id or uuid.uuid4().hex,
            body=body.encode() if isinstance(body, str) else body,
            dequeue_count=dequeue_count,
        )
        await self.host.invoke("deliver_events", msg=message)
        await self.host.wait_idle()

    async def deliver_queued(self) -> int:
        texts = await self.queued()
        for text in texts:
            await self.deliver(text)
        return len(texts)

    async def run_maintenance(self) -> int:
        """Run the maintenance function on every message of its queue, including those it
        queues itself (a purge continues), until the queue is empty; returns how many ran."""
        ran = 0
        while texts := await self.queued(self.settings.maintenance_queue):
            for text in texts:
                message = FuncQueueMessage(  # type: ignore[no-untyped-call]
                    id=uuid.uuid4().hex, body=text.encode(), dequeue_count=1
                )
                await self.host.invoke("run_maintenance", msg=message)
                ran += 1
        return ran

    async def register(self, agent_id: str, **spec: Any) -> Response:
        spec.setdefault("purpose", "Grow revenue through delighted customers")
        response = await self.call("POST", "agents", {"agent_id": agent_id, **spec})
        assert response.status == 201, response.text
        return response


def settings_for(
    connection_string: str, names: UniqueName, limits: Limits | None = None
) -> Settings:
    return Settings(
        storage=StorageConnection(connection_string=connection_string),
        task_hub=names.table_name("Hub"),
        events_queue=names.queue_name("events"),
        deadletter_queue=names.queue_name("dead"),
        agents_table=names.table_name("Agents"),
        history_table=names.table_name("History"),
        deadletter_table=names.table_name("Letters"),
        limits=limits or Limits(),
    )


TEST_HOST_CONFIG = HostConfig(
    queues=QueueOptions(
        batch_size=8,
        max_polling_interval=timedelta(seconds=0.2),
        visibility_timeout=timedelta(0),
        max_dequeue_count=2,
        message_encoding="none",
    ),
    durable=DurableOptions(hub_name="unused", max_entity_operation_batch_size=100),
)


@asynccontextmanager
async def running_aos(
    connection_string: str,
    names: UniqueName,
    *,
    limits: Limits | None = None,
    kinds: AgentKinds | None = None,
    queues: bool = False,
) -> AsyncIterator[Aos]:
    """With ``queues`` the host polls the queues itself. ``AOS_EVENTS_QUEUE`` is set in the
    environment to the test's events queue while it runs: the queue trigger's binding and the
    HTTP functions' queue output binding name it (``%AOS_EVENTS_QUEUE%``), as the app settings do
    in Azure."""
    settings = settings_for(connection_string, names, limits)
    previous = os.environ.get("AOS_EVENTS_QUEUE")
    os.environ["AOS_EVENTS_QUEUE"] = settings.events_queue
    try:
        async with _running(connection_string, settings, kinds, queues) as running:
            yield running
    finally:
        if previous is None:
            os.environ.pop("AOS_EVENTS_QUEUE", None)
        else:
            os.environ["AOS_EVENTS_QUEUE"] = previous


@asynccontextmanager
async def _running(
    connection_string: str, settings: Settings, kinds: AgentKinds | None, queues: bool
) -> AsyncIterator[Aos]:
    runtime = AppRuntime(kinds, load_settings=lambda: settings, settle_timeout=10.0)
    app = create_app(runtime=runtime)
    host = DevHost(
        app,
        connection_string=connection_string,
        hub=settings.task_hub,
        config=TEST_HOST_CONFIG,
        queues=queues,
        http=False,
    )
    async with host:
        try:
            yield Aos(host, runtime, settings, connection_string)
        finally:
            await runtime.aclose()
