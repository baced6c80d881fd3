"""Helpers for the devhost tests: run a scenario on a fresh loop, wait on a condition."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from devhost.config import DurableOptions, HostConfig, QueueOptions
from devhost.host import DevHost

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def eventually(
    check: Callable[[], Awaitable[T | None]], limit: float = 20.0, interval: float = 0.05
) -> T:
    """Poll `check` until it returns something truthy; fail after `limit` seconds."""
    async with asyncio.timeout(limit):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(interval)


def fast_config(batch_size: int = 50, max_dequeue_count: int = 2) -> HostConfig:
    """host.json settings that keep retries fast in tests."""
    return HostConfig(
        queues=QueueOptions(
            batch_size=8,
            max_polling_interval=timedelta(seconds=0.2),
            visibility_timeout=timedelta(0),
            max_dequeue_count=max_dequeue_count,
            message_encoding="none",
        ),
        durable=DurableOptions(hub_name="unused", max_entity_operation_batch_size=batch_size),
    )


def sample_host(connection_string: str, hub: str, queue: str = "", **kwargs: Any) -> DevHost:
    os.environ["DEVHOST_TEST_QUEUE"] = queue or f"unused-{hub.lower()}"
    kwargs.setdefault("config", fast_config())
    import devhost_sample_app

    return DevHost(devhost_sample_app.app, connection_string=connection_string, hub=hub, **kwargs)
