"""``DurableTurnScheduler`` over a stand-in for the durable client: starting is idempotent, a
wake reaches only a turn that can still receive it (a redelivered wake for a finished turn is
harmless, never a retry into the poison queue), and one for a turn not started yet raises so the
message comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pytest

from aos.adapters.azure.durable import DurableTurnScheduler
from aos.errors import StorageError

pytestmark = pytest.mark.asyncio


class Runtime(Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"


@dataclass
class Status:
    runtime_status: Runtime
    custom_status: Any = None
    input_: Any = None
    output: Any = None
    created_time: Any = None
    last_updated_time: Any = None


@dataclass
class FakeClient:
    statuses: dict[str, Status] = field(default_factory=dict)
    started: list[tuple[str, str, Any]] = field(default_factory=list)
    raised: list[tuple[str, str, Any]] = field(default_factory=list)

    async def get_status(self, instance_id: str, show_input: bool = False) -> Status | None:
        status = self.statuses.get(instance_id)
        if status is None or show_input:
            return status
        return Status(status.runtime_status, status.custom_status, None, status.output)

    async def start_new(self, name: str, instance_id: str, value: Any) -> str:
        self.started.append((name, instance_id, value))
        self.statuses[instance_id] = Status(Runtime.PENDING, input_=value)
        return instance_id

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        if self.statuses[instance_id].runtime_status is Runtime.COMPLETED:
            raise Exception("410 Gone")  # what the SDK raises for a finished instance
        self.raised.append((instance_id, name, data))


async def test_start_is_idempotent_and_wake_reaches_only_a_waiting_turn() -> None:
    client = FakeClient()
    turns = DurableTurnScheduler(client)
    with pytest.raises(StorageError, match="not started yet"):
        await turns.wake(instance_id="t1")

    await turns.start(instance_id="t1", start={"turn_id": "t1"})
    await turns.start(instance_id="t1", start={"turn_id": "t1"})
    assert [s[1] for s in client.started] == ["t1"]

    await turns.wake(instance_id="t1")
    assert client.raised == [("t1", "wake", {"wake": True})]

    client.statuses["t1"].runtime_status = Runtime.COMPLETED
    await turns.wake(instance_id="t1")  # a redelivered wake: nothing to do, no error
    assert len(client.raised) == 1
    status = await turns.status(instance_id="t1")
    assert status is not None
    assert status["runtime_status"] == "Completed"
    assert status["input"] == {"turn_id": "t1"}
