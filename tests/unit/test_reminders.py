"""Reminders over the in-memory adapters (``AgentManager``, whose ``fire_due_reminders`` plays the
orchestrations' part): set in a handler or from Python, replaced by id, cancelled for good,
fired once per due time, missed intervals fired once, bounded, and visible in history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import pytest
from pydantic import JsonValue

from aos import AgentManager, PerpetualAgent
from aos.domain.history import HistoryQuery
from aos.domain.limits import Limits
from aos.domain.models import Event, Reminder, utc_now
from aos.domain.reminders import next_due
from aos.errors import InvalidInputError, LimitExceededError

pytestmark = pytest.mark.asyncio


class Sleeper(PerpetualAgent):
    """Sets, replaces and cancels reminders as its events say; counts the wake-ups."""

    kind: ClassVar[str] = "sleeper"

    def on_event(self, event: Event) -> JsonValue:
        data = event.data if isinstance(event.data, dict) else {}
        if event.type == "remind":
            self.remind(
                data["id"], type="wake", data={"n": data.get("n")},
                after=data.get("after"), every=data.get("every"),
            )  # fmt: skip
        elif event.type == "remind-then-fail":
            self.remind("doomed", type="wake", after=1)
            raise RuntimeError("no")
        elif event.type == "cancel":
            return self.cancel_reminder(data["id"])
        elif event.type == "wake":
            self.set_state_value("wakes", int(self.get_state_value("wakes", 0)) + 1)
        return None


async def _setup() -> tuple[AgentManager, str]:
    manager = AgentManager()
    manager.register_agent(Sleeper(agent_id="sleepy"))
    return manager, "sleepy"


def _agent(manager: AgentManager, agent_id: str) -> PerpetualAgent:
    agent = manager.get_agent(agent_id)
    assert agent is not None
    return agent


async def _kinds(manager: AgentManager, agent_id: str) -> list[str]:
    page = await manager.history.page(agent_id=agent_id, query=HistoryQuery(limit=200))
    return [r.kind for r in page.records]  # newest first; an event's effects listed after it


async def test_a_one_shot_reminder_fires_once_and_is_gone() -> None:
    manager, sleepy = await _setup()
    await manager.send_event(sleepy, {"type": "remind", "data": {"id": "r1", "after": 0}})
    (reminder,) = _agent(manager, sleepy).context.reminders
    assert reminder.every_seconds is None
    assert await manager.fire_due_reminders() == 1
    assert await manager.fire_due_reminders(utc_now() + timedelta(days=1)) == 0
    agent = _agent(manager, sleepy)
    assert agent.get_state_value("wakes") == 1
    assert agent.context.reminders == ()
    kinds = await _kinds(manager, sleepy)
    assert kinds == ["event", "reminder_fired", "event", "reminder_scheduled"]


async def test_a_recurring_reminder_fires_once_for_missed_intervals_and_keeps_its_schedule() -> (
    None
):
    manager, sleepy = await _setup()
    await manager.send_event(
        sleepy, {"type": "remind", "data": {"id": "tick", "after": 0, "every": 2}}
    )
    (first,) = _agent(manager, sleepy).context.reminders
    later = utc_now() + timedelta(seconds=11)
    assert await manager.fire_due_reminders(later) == 1  # five intervals passed: one wake-up
    (second,) = _agent(manager, sleepy).context.reminders
    assert second.version == first.version
    assert (second.due - first.due).total_seconds() % 2 == 0  # on the schedule, no drift
    assert second.due > utc_now()
    assert _agent(manager, sleepy).get_state_value("wakes") == 1


async def test_next_due_is_the_first_schedule_point_after_now() -> None:
    now = utc_now()
    reminder = Reminder(
        reminder_id="r", type="t", due=now - timedelta(seconds=7), every_seconds=2, version="v1"
    )
    assert next_due(reminder, now) == now + timedelta(seconds=1)
    assert next_due(reminder.model_copy(update={"every_seconds": None}), now) is None


async def test_replacing_and_cancelling_reminders() -> None:
    manager, sleepy = await _setup()
    await manager.send_event(sleepy, {"type": "remind", "data": {"id": "r", "after": 3600}})
    await manager.send_event(sleepy, {"type": "remind", "data": {"id": "r", "after": 0}})
    (reminder,) = _agent(manager, sleepy).context.reminders  # replaced, not a second one
    assert len(manager.reminders.pending) == 1  # the first version's orchestration was stopped
    await manager.send_event(sleepy, {"type": "cancel", "data": {"id": "r"}})
    assert _agent(manager, sleepy).context.reminders == ()
    assert manager.reminders.pending == {}
    assert await manager.fire_due_reminders(utc_now() + timedelta(days=2)) == 0
    # an orchestration of a cancelled version that fires anyway is refused by the agent
    stale = {
        "agent_id": sleepy, "reminder_id": "r", "version": reminder.version,
        "due": reminder.model_dump(mode="json")["due"],
    }  # fmt: skip
    assert manager.entities.run(sleepy, "fire_reminder", stale) == {"fired": False, "next": None}
    assert _agent(manager, sleepy).get_state_value("wakes") is None
    kinds = await _kinds(manager, sleepy)
    assert kinds.count("reminder_scheduled") == 2
    assert kinds.count("reminder_cancelled") == 1


async def test_a_failed_handler_sets_no_reminder_and_reminders_are_bounded() -> None:
    manager = AgentManager(limits=Limits(max_reminders=2))
    manager.register_agent(Sleeper(agent_id="sleepy"))
    await manager.send_event("sleepy", {"type": "remind-then-fail"})
    assert _agent(manager, "sleepy").context.reminders == ()
    assert manager.reminders.pending == {}
    for n in range(3):
        await manager.send_event("sleepy", {"type": "remind", "data": {"id": f"r{n}", "after": 9}})
    assert len(_agent(manager, "sleepy").context.reminders) == 2
    page = await manager.history.page(agent_id="sleepy", query=HistoryQuery(kind="failure"))
    errors = [r.error["type"] for r in page.records if r.error]
    assert errors == ["LimitExceededError", "RuntimeError"]


async def test_reminders_from_python_are_checked() -> None:
    agent = Sleeper(agent_id="solo", limits=Limits(max_reminders=1))
    agent.remind("a", type="wake", every=timedelta(minutes=5))
    with pytest.raises(LimitExceededError):
        agent.remind("b", type="wake", after=1)
    with pytest.raises(InvalidInputError):
        agent.remind("c", type="wake")  # no time given
    with pytest.raises(InvalidInputError):
        agent.remind("not an id!", type="wake", after=1)
    assert agent.cancel_reminder("a") is True
    assert agent.cancel_reminder("a") is False
    kinds: list[Any] = [e.kind for e in agent.take_effects()]
    assert kinds == ["reminder_scheduled", "reminder_cancelled"]
