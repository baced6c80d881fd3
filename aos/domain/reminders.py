"""Reminders: an agent woken with an event at a time, once or at an interval.

The agent's entity state is the authority: it holds each active reminder (``Reminder``: its event,
its next due time, its interval, and a ``version`` that changes whenever it is set again). The
waiting is done by a Durable orchestration per reminder version (``instance_id``), started from the
events queue by the queue function (the entity cannot start orchestrations): it waits on a durable
timer (any horizon) or a ``cancel`` event, then calls the entity's ``fire_reminder`` operation,
which fires only if that version is still active and due at that time, and answers the next due
time, if any, with which the orchestration continues as new.

So: replacing or cancelling a reminder changes the state first, and an orchestration of an old
version that fires anyway is refused by the entity; a fire repeated by the host (the same version
and due time) is refused too, and the fired event's id (``fire_event_id``) is the same each time,
so the entity's window of recent ids drops it as well. After downtime a recurring reminder fires
once and its next due time is the first point of its schedule after now (``next_due``): missed
intervals are not replayed, and the schedule never drifts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aos.domain.models import (
    MAX_INTERVAL_SECONDS,
    AgentId,
    EventId,
    EventType,
    JsonData,
    Reminder,
    ReminderId,
    Timestamp,
    format_timestamp,
    utc_now,
)

__all__ = [
    "MAX_INTERVAL_SECONDS",
    "REMINDER_ORCHESTRATOR",
    "Reminder",
    "ReminderCancel",
    "ReminderControl",
    "ReminderFire",
    "ReminderId",
    "ReminderMessage",
    "ReminderRequest",
    "ReminderSet",
    "fire_event_id",
    "instance_id",
    "next_due",
]

REMINDER_ORCHESTRATOR = "aos_reminder"


class ReminderRequest(BaseModel):
    """``PUT /api/agents/{id}/reminders/{reminder_id}``: the event, and when. ``at`` (a time) or
    ``after_seconds`` (a delay) sets the first time; with only ``every_seconds`` it is one
    interval from now."""

    model_config = ConfigDict(extra="forbid")

    type: EventType
    data: JsonData = None
    at: Timestamp | None = None
    after_seconds: float | None = Field(default=None, ge=0, le=MAX_INTERVAL_SECONDS)
    every_seconds: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_SECONDS)

    @model_validator(mode="after")
    def _when(self) -> ReminderRequest:
        if self.at is not None and self.after_seconds is not None:
            raise ValueError("give 'at' or 'after_seconds', not both")
        if self.at is None and self.after_seconds is None and self.every_seconds is None:
            raise ValueError("give 'at', 'after_seconds' or 'every_seconds'")
        return self

    def first_due(self, now: datetime) -> datetime:
        if self.at is not None:
            return self.at
        if self.after_seconds is not None:
            return now + timedelta(seconds=self.after_seconds)
        return now + timedelta(seconds=self.every_seconds or 0)


class ReminderFire(BaseModel):
    """What the orchestration carries and hands to ``fire_reminder``: which version, due when."""

    model_config = ConfigDict(extra="forbid")

    agent_id: AgentId
    reminder_id: ReminderId
    version: EventId
    due: Timestamp


class ReminderControl(BaseModel):
    """On the events queue: start the orchestration that waits for a reminder version
    (``schedule``), and/or stop the one of a replaced or cancelled version (``stop``)."""

    model_config = ConfigDict(extra="forbid")

    agent_id: AgentId
    reminder_id: ReminderId
    schedule: ReminderFire | None = None
    stop: str | None = Field(default=None, max_length=100, description="an instance id")


class ReminderSet(BaseModel):
    """Input of the entity's ``set_reminder``: the request as the API took it, at ``now``, as
    version ``version`` (both chosen by the caller, so a re-run batch makes the same change)."""

    model_config = ConfigDict(extra="forbid")

    reminder_id: ReminderId
    version: EventId
    now: Timestamp
    request: ReminderRequest


class ReminderCancel(BaseModel):
    """Input of the entity's ``cancel_reminder``."""

    model_config = ConfigDict(extra="forbid")

    reminder_id: ReminderId
    version: EventId


class ReminderMessage(BaseModel):
    """The envelope of a ``ReminderControl`` on the events queue (beside ``QueueMessage``)."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    target: Literal["reminder"] = "reminder"
    reminder: ReminderControl


def instance_id(agent_id: str, reminder_id: str, version: str) -> str:
    """The orchestration instance of one reminder version: the same inputs, the same id."""
    digest = hashlib.blake2b(
        f"{agent_id}\x00{reminder_id}\x00{version}".encode(), digest_size=16, person=b"aos-remind"
    ).hexdigest()
    return f"aos-reminder-{digest}"


def fire_event_id(reminder: Reminder) -> str:
    """The id of the event a reminder version fires at its due time (at most 101 characters)."""
    return f"{reminder.reminder_id}:{reminder.version[:8]}:{format_timestamp(reminder.due)}"


def next_due(reminder: Reminder, now: datetime | None = None) -> datetime | None:
    """After firing: ``None`` for a one-shot reminder, else the first point of its schedule
    (``due + k * every``) after ``now``, so missed intervals fire once, never in a burst."""
    if reminder.every_seconds is None:
        return None
    now = now or utc_now()
    every = timedelta(seconds=reminder.every_seconds)
    due = reminder.due + every
    if due <= now:
        missed = (now - due) // every + 1
        due += missed * every
    return due
