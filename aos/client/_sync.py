"""``AosClient``: the HTTP API from synchronous code."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from aos.api.schemas import (
    AgentDetail,
    AgentResource,
    AlignmentResponse,
    BroadcastAccepted,
    EventAccepted,
    Health,
    HistoryItem,
    MessageAccepted,
    PurgeJob,
    TurnResource,
)
from aos.client import _calls as calls
from aos.client._calls import Body, Call, Page, RecordKind, Retry, TurnWait
from aos.client._config import DEFAULT_TIMEOUT, headers, resolve_url
from aos.client._models import DeadLetterItem, DeadLetterReplayed
from aos.domain.models import Goal, Reminder
from aos.errors import NotFoundError

__all__ = ["AosClient"]

T = TypeVar("T")


class AosClient:
    """The AOS HTTP API, one method per route.

    ``base_url`` is the app's root (``https://<app>.azurewebsites.net``), default ``AOS_URL``, else
    ``http://localhost:7071``; ``function_key`` (default ``AOS_FUNCTION_KEY``) is sent as
    ``x-functions-key``. Answers are the models the service validates with; error answers raise
    the ``aos.errors`` classes; 429 and 503 are retried as ``retry`` says. Use it as a context
    manager, or call ``close()``. ``transport`` is handed to httpx (``httpx.MockTransport`` lets
    tests run without a service).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        function_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = resolve_url(base_url)
        self.retry = retry or Retry()
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers(function_key),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> AosClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------------------ sending
    def _send(self, call: Call[T]) -> T:
        attempt = 1
        while True:
            try:
                response = self._http.request(
                    call.method, call.url, params=call.params, json=call.json, headers=call.headers
                )
            except httpx.TransportError as exc:
                raise calls.unreachable(self.base_url, exc) from exc
            delay = self.retry.delay(call, response, attempt)
            if delay is None:
                return call.result(response)
            time.sleep(delay)
            attempt += 1

    def _items(self, call: Call[Page[T]]) -> Iterator[T]:
        current: Call[Page[T]] | None = call
        while current is not None:
            page = self._send(current)
            yield from page.items
            current = current.next_page(page.next_link) if page.next_link else None

    # ------------------------------------------------------------------------------ agents
    def register_agent(self, agent: Body) -> AgentResource:
        """Register a new agent (a ``RegisterAgent`` or its fields); ``ConflictError`` if it
        exists."""
        return self._send(calls.register_agent(agent))

    def put_agent(self, agent_id: str, agent: Body) -> AgentResource:
        """Create or replace the agent (idempotent); fields left out take their defaults."""
        return self._send(calls.put_agent(agent_id, agent))

    def get_agent(self, agent_id: str) -> AgentDetail:
        """The agent: its spec and status (as listed) with goals, state, recent events and decisions."""
        return self._send(calls.get_agent(agent_id))

    def list_agents(self, *, page_size: int | None = None) -> Iterator[AgentResource]:
        """Every registered agent, fetched ``page_size`` (1-200, default 50) at a time."""
        return self._items(calls.list_agents(page_size))

    def update_agent(self, agent_id: str, changes: Body) -> AgentResource:
        """Change purpose, scope, criteria, adapter or subscriptions (an ``AgentPatch``)."""
        return self._send(calls.update_agent(agent_id, changes))

    def delete_agent(self, agent_id: str, *, purge: bool = False) -> None:
        """Deregister the agent; ``purge`` also deletes its history and receipts, in the background
        (progress at ``GET /api/agents/{id}/purge``)."""
        self._send(calls.delete_agent(agent_id, purge))

    def get_purge(self, agent_id: str) -> PurgeJob:
        """The progress of a purge (``delete_agent(..., purge=True)``): rows deleted so far, and
        ``status`` ``"done"`` once finished. ``NotFoundError`` if the agent was never purged."""
        return self._send(calls.get_purge(agent_id))

    # ------------------------------------------------------------------------------ goals
    def list_goals(self, agent_id: str) -> Iterator[Goal]:
        return self._items(calls.list_goals(agent_id))

    def add_goal(self, agent_id: str, goal: Body) -> Goal:
        """Add a goal (a ``GoalCreate`` or its fields); the service picks an id if none is given."""
        return self._send(calls.add_goal(agent_id, goal))

    def get_goal(self, agent_id: str, goal_id: str) -> Goal:
        return self._send(calls.get_goal(agent_id, goal_id))

    def update_goal(self, agent_id: str, goal_id: str, changes: Body) -> Goal:
        """Change status, progress, description or metadata (a ``GoalChanges``)."""
        return self._send(calls.update_goal(agent_id, goal_id, changes))

    def remove_goal(self, agent_id: str, goal_id: str) -> None:
        self._send(calls.remove_goal(agent_id, goal_id))

    # ------------------------------------------------------------------------------ reminders
    def list_reminders(self, agent_id: str) -> Iterator[Reminder]:
        """The agent's active reminders, with their next due times."""
        return self._items(calls.list_reminders(agent_id))

    def set_reminder(self, agent_id: str, reminder_id: str, reminder: Body) -> Reminder:
        """Set (or replace) a reminder: ``type``, ``data``, ``at`` or ``after_seconds``, and
        ``every_seconds`` to repeat it."""
        return self._send(calls.set_reminder(agent_id, reminder_id, reminder))

    def cancel_reminder(self, agent_id: str, reminder_id: str) -> None:
        """Cancel a reminder: it never fires again (``NotFoundError`` if there is none)."""
        self._send(calls.cancel_reminder(agent_id, reminder_id))

    # ------------------------------------------------------------------------------ messages
    def send_message(
        self, agent_id: str, content: str, *, message_id: str | None = None
    ) -> MessageAccepted:
        """Say something to the agent (1 to 16,000 characters): it starts a turn, which thinks
        and answers later (``get_turn``). The same ``message_id`` twice is one turn; without one
        the client makes one, so that its own retries are the same message. ``BusyError`` when
        the agent has too many turns waiting."""
        return self._send(calls.send_message(agent_id, content, message_id))

    def get_turn(self, agent_id: str, turn_id: str) -> TurnResource:
        """A turn: its status, and its reply, error, tool calls, or the tool call it waits to have
        approved. ``NotFoundError`` until the agent knows it (a moment after ``send_message``)."""
        return self._send(calls.get_turn(agent_id, turn_id))

    def approve_turn(
        self, agent_id: str, turn_id: str, approve: bool, reason: str | None = None
    ) -> TurnResource:
        """Approve (or refuse, with ``approve=False`` and a ``reason`` the model reads) the tool
        call a turn waits on; ``ConflictError`` when it waits for none."""
        return self._send(calls.approve_turn(agent_id, turn_id, approve, reason))

    def ask(
        self,
        agent_id: str,
        content: str,
        *,
        message_id: str | None = None,
        timeout: float = 60.0,
        poll: float = 0.5,
    ) -> TurnResource:
        """``send_message``, then ``wait_for_turn``: the turn once it is ``completed`` (see
        ``reply``), ``failed`` (see ``error``) or ``waiting_approval`` (see ``waiting_for``)."""
        accepted = self.send_message(agent_id, content, message_id=message_id)
        return self.wait_for_turn(agent_id, accepted.turn_id, timeout=timeout, poll=poll)

    def wait_for_turn(
        self, agent_id: str, turn_id: str, *, timeout: float = 60.0, poll: float = 0.5
    ) -> TurnResource:
        """Poll the turn every ``poll`` seconds until it is completed, failed or waiting for an
        approval; ``TurnTimeoutError`` after ``timeout`` seconds (the turn goes on). A turn still
        unknown is "not yet" for its first seconds (its message is on the way), then not found."""
        wait = TurnWait(agent_id, turn_id, timeout, started=time.monotonic())
        while True:
            try:
                turn = self.get_turn(agent_id, turn_id)
            except NotFoundError as error:
                wait.unknown(error, time.monotonic())
            else:
                if wait.seen(turn):
                    return turn
            pause = wait.pause(time.monotonic(), poll)
            time.sleep(pause)

    # ------------------------------------------------------------------------------ events
    def send_event(
        self, agent_id: str, event: Body, *, correlation_id: str | None = None
    ) -> EventAccepted:
        """Queue an event (an ``EventIn`` or its fields) for one agent. Without an ``event_id``
        the client makes one, so that its own retries are the same event."""
        return self._send(calls.send_event(agent_id, event, correlation_id))

    def publish_event(self, event: Body, *, correlation_id: str | None = None) -> BroadcastAccepted:
        """Queue an event for every agent subscribed to its type (an ``event_id`` is made as for
        ``send_event``; publishing the same id again reaches each subscriber once)."""
        return self._send(calls.publish_event(event, correlation_id))

    # ------------------------------------------------------------------------------ history
    def list_history(
        self,
        agent_id: str,
        *,
        page_size: int | None = None,
        types: str | Sequence[str] | None = None,
        kind: RecordKind | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> Iterator[HistoryItem]:
        """The agent's archived events and decisions, newest first, ``page_size`` (1-1000,
        default 50) at a time; ``types``, ``kind``, ``since`` (inclusive) and ``until``
        (exclusive) filter."""
        call = calls.list_history(
            agent_id, page_size=page_size, types=types, kind=kind, since=since, until=until
        )
        return self._items(call)

    def follow_history(
        self,
        agent_id: str,
        *,
        after: int | None = None,
        poll_interval: float = 1.0,
        types: str | Sequence[str] | None = None,
        kind: RecordKind | None = None,
    ) -> Generator[HistoryItem, None, None]:
        """Records archived after sequence ``after`` (default: from now on), oldest first, as
        they arrive; polls every ``poll_interval`` seconds and never ends by itself (``close()`` it)."""
        if after is None:
            after = self.latest_sequence(agent_id)
        while True:
            fresh: list[HistoryItem] = []
            for item in self.list_history(agent_id, types=types, kind=kind):
                if item.sequence <= after:
                    break
                fresh.append(item)
            yield from reversed(fresh)
            if fresh:
                after = fresh[0].sequence
            time.sleep(poll_interval)

    def latest_sequence(self, agent_id: str) -> int:
        """The sequence of the agent's newest history record (0 if it has none)."""
        newest = next(self.list_history(agent_id, page_size=1), None)
        return newest.sequence if newest else 0

    # ------------------------------------------------------------------------------ more
    def evaluate_alignment(self, agent_id: str, action: Any) -> AlignmentResponse:
        """Score an action (text or any JSON) against the agent's purpose."""
        return self._send(calls.evaluate_alignment(agent_id, action))

    def health(self) -> Health:
        """Liveness and storage reachability; ``status`` is ``degraded`` when storage is not
        reachable (the service answers 503 then, which is not raised)."""
        return self._send(calls.health())

    def openapi(self) -> dict[str, Any]:
        """The service's OpenAPI 3.1 document."""
        return self._send(calls.openapi())

    # ------------------------------------------------------------------------------ dead letters
    def list_dead_letters(
        self, *, poison: bool = False, page_size: int | None = None
    ) -> Iterator[DeadLetterItem]:
        """Messages that could not be delivered: dead-lettered (never valid), or with ``poison``
        those that failed every retry."""
        return self._items(calls.list_dead_letters(poison, page_size))

    def get_dead_letter(self, letter_id: str, *, poison: bool = False) -> DeadLetterItem:
        return self._send(calls.get_dead_letter(letter_id, poison))

    def replay_dead_letter(self, letter_id: str, *, poison: bool = False) -> DeadLetterReplayed:
        """Put the message back on the events queue."""
        return self._send(calls.replay_dead_letter(letter_id, poison))
