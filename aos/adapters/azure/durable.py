"""``DurableEntityClient`` and ``DurableReminderScheduler``: the ``EntityClient`` and
``ReminderScheduler`` ports on the durable SDK's ``DurableOrchestrationClient`` (the
``durable_client_input`` binding)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aos.agents.entity import ENTITY_NAME
from aos.domain.models import format_timestamp
from aos.domain.reminders import REMINDER_ORCHESTRATOR
from aos.domain.turns import TURN_ORCHESTRATOR
from aos.errors import StorageError
from aos.ports.entity_client import EntityClient
from aos.ports.reminders import ReminderScheduler
from aos.ports.turns import TurnScheduler

__all__ = ["DurableEntityClient", "DurableReminderScheduler", "DurableTurnScheduler"]

logger = logging.getLogger("aos.durable")


def durable_error(exc: Exception, what: str) -> StorageError:
    """The AOS error for a failed durable client call: the SDK raises a bare ``Exception`` with the
    webhook's URL and answer in its message, which is logged, never shown to callers."""
    logger.warning("%s failed: %s", what, exc)
    return StorageError(f"{what} failed: the durable client failed ({type(exc).__name__})")


class DurableEntityClient(EntityClient):
    def __init__(self, client: Any) -> None:
        self._client = client

    async def signal(self, *, agent_id: str, operation: str, value: Any = None) -> None:
        import azure.durable_functions as df

        try:
            await self._client.signal_entity(df.EntityId(ENTITY_NAME, agent_id), operation, value)
        except Exception as exc:  # the SDK raises bare Exception for unexpected statuses
            raise durable_error(exc, f"Signalling agent {agent_id!r}") from exc

    async def read(self, *, agent_id: str) -> dict[str, Any] | None:
        import azure.durable_functions as df

        try:
            response = await self._client.read_entity_state(df.EntityId(ENTITY_NAME, agent_id))
        except Exception as exc:
            raise durable_error(exc, f"Reading agent {agent_id!r}") from exc
        if not response.entity_exists:
            return None
        state = response.entity_state
        return state if isinstance(state, dict) else None


async def _start_once(
    client: Any,
    orchestrator: str,
    instance_id: str,
    value: dict[str, Any],
    exists: Callable[[str], Awaitable[bool]],
    what: str,
) -> None:
    """Start ``orchestrator`` as ``instance_id`` unless that instance exists (running, continued
    or finished): a redelivered control message starts nothing twice, and losing the race to a
    concurrent delivery is no failure."""
    if await exists(instance_id):
        return
    try:
        await client.start_new(orchestrator, instance_id, value)
    except Exception as exc:
        if await exists(instance_id):  # started by a concurrent delivery: fine
            return
        raise durable_error(exc, f"Starting {what} {instance_id!r}") from exc


class DurableReminderScheduler(ReminderScheduler):
    """Reminder orchestrations through the durable client. The SDK raises bare ``Exception`` for
    unexpected statuses; whether that matters is decided by reading the instance's status."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def start(self, *, instance_id: str, fire: dict[str, Any]) -> None:
        await _start_once(
            self._client, REMINDER_ORCHESTRATOR, instance_id, fire, self._exists, "reminder"
        )

    async def stop(self, *, instance_id: str) -> None:
        try:
            await self._client.raise_event(instance_id, "cancel", None)
        except Exception as exc:
            if await self._running(instance_id):
                raise durable_error(exc, f"Stopping reminder {instance_id!r}") from exc
            logger.info("reminder %s was not running", instance_id)

    async def _status(self, instance_id: str) -> Any:
        try:
            return await self._client.get_status(instance_id)
        except Exception as exc:
            raise durable_error(exc, f"Reading reminder {instance_id!r}") from exc

    async def _exists(self, instance_id: str) -> bool:
        status = await self._status(instance_id)
        return status is not None and status.runtime_status is not None

    async def _running(self, instance_id: str) -> bool:
        import azure.durable_functions as df

        status = await self._status(instance_id)
        return status is not None and status.runtime_status in (
            df.OrchestrationRuntimeStatus.Pending,
            df.OrchestrationRuntimeStatus.Running,
        )


class DurableTurnScheduler(TurnScheduler):
    """Turn orchestrations through the durable client (instance id = turn id)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def start(self, *, instance_id: str, start: dict[str, Any]) -> None:
        await _start_once(self._client, TURN_ORCHESTRATOR, instance_id, start, self._exists, "turn")

    async def wake(self, *, instance_id: str) -> None:
        status = await self.status(instance_id=instance_id)
        if status is None:
            raise StorageError(f"turn {instance_id!r} has not started yet; delivered again later")
        if status["runtime_status"] not in _WAITING:  # it ran already: nothing to wake
            return
        try:
            await self._client.raise_event(instance_id, "wake", {"wake": True})
        except Exception as exc:
            again = await self.status(instance_id=instance_id)
            if again is not None and again["runtime_status"] not in _WAITING:
                return  # it ended meanwhile
            raise durable_error(exc, f"Waking turn {instance_id!r}") from exc

    async def status(self, *, instance_id: str) -> dict[str, Any] | None:
        try:  # the status API leaves the input out unless asked (showInput)
            status = await self._client.get_status(instance_id, show_input=True)
        except Exception as exc:
            raise durable_error(exc, f"Reading turn {instance_id!r}") from exc
        if status is None or status.runtime_status is None:
            return None
        return {
            "runtime_status": status.runtime_status.value,
            "custom_status": _json(status.custom_status),
            "input": _json(status.input_),
            "output": _json(status.output),
            "created_time": _time(status.created_time),
            "last_updated_time": _time(status.last_updated_time),
        }

    async def approve(self, *, instance_id: str, answer: dict[str, Any]) -> None:
        try:
            await self._client.raise_event(instance_id, "approval", answer)
        except Exception as exc:
            raise durable_error(exc, f"Approving in turn {instance_id!r}") from exc

    async def _exists(self, instance_id: str) -> bool:
        return await self.status(instance_id=instance_id) is not None


_WAITING = frozenset({"Pending", "Running"})
"""Runtime statuses in which an orchestration can still receive an event."""


def _json(value: Any) -> Any:
    """The status API returns input, output and custom status as JSON values, except where a
    value was itself a JSON string (a double-encoded input): decode that once more."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _time(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_timestamp(value)
    return str(value)
