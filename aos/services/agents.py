"""``AgentService``: registering agents and changing them, keeping the index and entities in step.

What the HTTP API and the MCP endpoint call, over ports (the seed's ``AgentManager``, for agents
used in one Python process, is ``aos.manager``). An agent is an entry in the agents index and
a Durable entity. The index is written first and removed last (see ``aos.ports.index``), and each
change is checked against the agent's current state with the same domain code the entity runs (a
dry run), because a signal cannot return the entity's error to the caller. After signalling, the
manager waits (bounded) until the entity shows the change, so that a client reads its own writes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aos.agents import AgentKinds, PerpetualAgent, PurposeDrivenAgent
from aos.alignment import AlignmentResult
from aos.domain.contexts import ContextStore
from aos.domain.document import ContextDocument
from aos.domain.history import HistoryPage, HistoryQuery
from aos.domain.limits import Limits
from aos.domain.messages import QueueMessage, broadcast_messages, encode_message
from aos.domain.models import (
    AgentSpec,
    Event,
    Goal,
    GoalCreate,
    GoalUpdate,
    SpecUpdate,
    new_id,
    utc_now,
)
from aos.domain.reminders import ReminderCancel, ReminderRequest, ReminderSet
from aos.domain.validation import parse
from aos.errors import (
    AgentExistsError,
    AgentNotFoundError,
    ConflictError,
    GoalNotFoundError,
    NotFoundError,
    PartialPublishError,
    StorageError,
    UnknownOperationError,
)
from aos.ports.entity_client import EntityClient
from aos.ports.index import AgentIndex, IndexEntry, IndexStatus, Page
from aos.ports.maintenance import PurgeJobs, PurgeStatus
from aos.ports.queue import EventQueue
from aos.ports.receipts import DeliveryReceipts
from aos.services.contexts import EntityContextServer
from aos.services.registration import activate, configure_signal

__all__ = ["AgentService", "Change"]


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of a write: what it produced, and whether the entity showed it in time
    (``settled``; if not, it is still applied, just later)."""

    value: Any
    settled: bool
    created: bool = False


class AgentService:
    def __init__(
        self,
        *,
        index: AgentIndex,
        queue: EventQueue,
        entities: EntityClient,
        kinds: AgentKinds,
        limits: Limits,
        receipts: DeliveryReceipts | None = None,
        settle_timeout: float = 10.0,
        contexts: ContextStore | None = None,
        purges: PurgeJobs | None = None,
    ) -> None:
        self.purges = purges
        """Where ``?purge=true`` records a purge that runs in the background; without it (agents
        in one Python process) the rows are deleted during the call."""
        self.contexts = (
            contexts if contexts is not None else ContextStore(states=EntityContextServer(entities))
        )
        self.index = index
        self.receipts = receipts
        self.queue = queue
        self.entities = entities
        self.kinds = kinds
        self.limits = limits
        self.settle_timeout = settle_timeout

    # ------------------------------------------------------------------------------ agents
    async def register_agent(self, spec: AgentSpec, *, replace: bool = False) -> Change:
        """Create an agent (``replace=False``: ``AgentExistsError`` if it exists) or create or
        replace it (``replace=True``, PUT). Repeating an interrupted registration finishes it."""
        existing = await self.index.get(agent_id=spec.agent_id)
        created = existing is None or existing.status is IndexStatus.REGISTERING
        if existing is not None and existing.status is IndexStatus.DEREGISTERING:
            raise ConflictError(
                f"Agent {spec.agent_id!r} is being deregistered; repeat the DELETE, then register"
            )
        if existing is not None and existing.status is IndexStatus.ACTIVE and not replace:
            raise AgentExistsError(spec.agent_id)
        await self._check_spec(spec, replacing=existing is not None)
        if existing is None:
            entry = await self.index.create(entry=IndexEntry(spec=spec))
        else:
            entry = await self.index.replace(entry=existing.with_spec(spec), previous=existing)
        settled = await self._configure(spec)
        if settled:
            entry = await activate(self.index, entry)
        return Change(entry, settled, created)

    async def update_agent(self, agent_id: str, changes: dict[str, Any]) -> Change:
        """Change purpose, scope, success criteria, adapter or subscriptions. An agent whose
        registration is unfinished (it answered 202) is finished by the change."""
        existing = await self._indexed(agent_id)
        spec = parse(SpecUpdate, changes, what="agent spec").apply_to(agent_id, existing.spec)
        await self._check_spec(spec, replacing=True)
        entry = await self.index.replace(entry=existing.with_spec(spec), previous=existing)
        settled = await self._configure(spec)
        if settled:
            entry = await activate(self.index, entry)
        return Change(entry, settled)

    async def deregister_agent(self, agent_id: str, *, purge: bool = False) -> Change:
        """Mark the index row, delete the entity, then remove the row (see ``aos.ports.index``).
        ``purge`` also deletes the agent's history and receipts; otherwise retention does.

        With ``purges`` the deletion is a background job (its ``PurgeStatus`` is the change's
        value), recorded before the index row goes, so a crash in between is finished by
        repeating the DELETE. A deregistered agent whose history remains can be purged too."""
        entry = await self.index.get(agent_id=agent_id)
        if entry is None:
            if purge and self.purges is not None and await self._has_rows(agent_id):
                return Change(await self.purges.start(agent_id=agent_id), settled=True)
            raise AgentNotFoundError(agent_id)
        if entry.status is not IndexStatus.DEREGISTERING:
            entry = await self.index.replace(
                entry=entry.with_status(IndexStatus.DEREGISTERING), previous=entry
            )
        await self.entities.signal(agent_id=agent_id, operation="deregister")
        settled, _ = await self.entities.wait_for(
            agent_id=agent_id, condition=lambda state: state is None, within=self.settle_timeout
        )
        status: PurgeStatus | None = None
        if settled:
            if purge and self.purges is not None:
                status = await self.purges.start(agent_id=agent_id)
            elif purge:
                await self.contexts.purge_history(agent_id=agent_id)
                if self.receipts is not None:
                    await self.receipts.purge_agent(agent_id=agent_id)
            await self.index.delete(entry=entry)
        return Change(status if status is not None else entry, settled)

    async def purge_status(self, agent_id: str) -> PurgeStatus:
        """The agent's last purge (``NotFoundError`` if none was asked for)."""
        status = None if self.purges is None else await self.purges.status(agent_id=agent_id)
        if status is None:
            raise NotFoundError(f"No purge of agent {agent_id!r} was requested")
        return status

    async def _has_rows(self, agent_id: str) -> bool:
        if await self.contexts.has_history(agent_id=agent_id):
            return True
        return self.purges is not None and await self.purges.status(agent_id=agent_id) is not None

    async def list_agents(self, *, limit: int, continuation: str | None) -> Page[IndexEntry]:
        return await self.index.page(limit=limit, continuation=continuation)

    async def get_agent(self, agent_id: str) -> tuple[IndexEntry, dict[str, Any]]:
        """The agent's index entry and its persisted context (``AgentNotFoundError`` unless it
        has both): what ``GET /api/agents/{agent_id}`` and the MCP context resource show."""
        entry = await self.index.get(agent_id=agent_id)
        context = await self.contexts.load(agent_id=agent_id)
        if entry is None or context is None:
            raise AgentNotFoundError(agent_id)
        return entry, context

    async def get_context(self, agent_id: str) -> dict[str, Any]:
        """The agent's persisted context (the entity state)."""
        state = await self.contexts.load(agent_id=agent_id)
        if state is None:
            raise AgentNotFoundError(agent_id)
        return state

    async def get_history(self, agent_id: str, query: HistoryQuery) -> HistoryPage:
        """Archived events and decisions, newest first. The history of a deregistered agent stays
        readable until purged; an id that was never registered is ``AgentNotFoundError``."""
        page = await self.contexts.history(agent_id=agent_id, query=query)
        if not page.records and query.continuation is None:
            entry = await self.index.get(agent_id=agent_id)
            if entry is None and not await self.contexts.has_history(agent_id=agent_id):
                raise AgentNotFoundError(agent_id)
        return page

    # ------------------------------------------------------------------------------ goals
    async def list_goals(self, agent_id: str) -> list[dict[str, Any]]:
        return list((await self.get_context(agent_id))["goals"])

    async def get_goal(self, agent_id: str, goal_id: str) -> dict[str, Any]:
        agent = await self._purpose_driven(agent_id)
        goal = agent.context.goal(goal_id)
        if goal is None:
            raise GoalNotFoundError(goal_id)
        return goal.model_dump(mode="json")

    async def add_goal(self, agent_id: str, goal: GoalCreate) -> Change:
        agent = await self._purpose_driven(agent_id)
        goal = goal.model_copy(update={"id": goal.id or new_id()})
        existing = agent.context.goal(str(goal.id))
        planned = agent.create_goal(goal)  # dry run: raises what the entity would
        if existing is not None:  # a retry of the same goal: nothing to change
            return Change(existing.model_dump(mode="json"), settled=True)
        payload = goal.model_dump(mode="json")
        return await self._goal_change(agent_id, "add_goal", payload, planned, present=True)

    async def update_goal(self, agent_id: str, update: GoalUpdate) -> Change:
        agent = await self._purpose_driven(agent_id)
        planned = agent.change_goal(update)
        payload = update.model_dump(mode="json", exclude_unset=True)
        payload["id"] = update.id
        return await self._goal_change(agent_id, "update_goal", payload, planned, present=True)

    async def remove_goal(self, agent_id: str, goal_id: str) -> Change:
        agent = await self._purpose_driven(agent_id)
        removed = agent.delete_goal(goal_id)
        return await self._goal_change(
            agent_id, "remove_goal", {"id": goal_id}, removed, present=False
        )

    # ------------------------------------------------------------------------------ reminders
    async def list_reminders(self, agent_id: str) -> list[dict[str, Any]]:
        """The agent's active reminders with their next due times."""
        return list((await self.get_context(agent_id)).get("reminders", []))

    async def set_reminder(
        self, agent_id: str, reminder_id: str, request: ReminderRequest
    ) -> Change:
        """Create or replace a reminder: the same change an agent makes with ``remind`` (a dry
        run first, so a refusal is the caller's answer), signalled as ``set_reminder`` with a new
        version and the time now, then polled until the state shows it."""
        agent = await self._agent(agent_id)
        created = agent.context.reminder(reminder_id) is None
        change = ReminderSet(
            reminder_id=reminder_id, version=new_id(), now=utc_now(), request=request
        )
        planned, _ = agent.schedule_reminder(
            reminder_id, request, version=change.version, now=change.now, cause_id=None
        )
        await self.entities.signal(
            agent_id=agent_id, operation="set_reminder", value=change.model_dump(mode="json")
        )

        def applied(state: dict[str, Any] | None) -> bool:
            reminders = (state or {}).get("reminders", [])
            return any(r["version"] == change.version for r in reminders)

        settled, _ = await self.entities.wait_for(
            agent_id=agent_id, condition=applied, within=self.settle_timeout
        )
        return Change(planned.model_dump(mode="json"), settled, created)

    async def cancel_reminder(self, agent_id: str, reminder_id: str) -> Change:
        """Cancel a reminder (``NotFoundError`` if there is none): it never fires again."""
        agent = await self._agent(agent_id)
        if agent.context.reminder(reminder_id) is None:
            raise NotFoundError(f"Agent {agent_id!r} has no reminder {reminder_id!r}")
        change = ReminderCancel(reminder_id=reminder_id, version=new_id())
        await self.entities.signal(
            agent_id=agent_id, operation="cancel_reminder", value=change.model_dump(mode="json")
        )

        def applied(state: dict[str, Any] | None) -> bool:
            reminders = (state or {}).get("reminders", [])
            return all(r["reminder_id"] != reminder_id for r in reminders)

        settled, _ = await self.entities.wait_for(
            agent_id=agent_id, condition=applied, within=self.settle_timeout
        )
        return Change({"reminder_id": reminder_id, "status": "cancelling"}, settled)

    # ------------------------------------------------------------------------------ events
    async def send_event(self, event: Event) -> Event:
        """Queue an event for one agent (``event.agent_id``)."""
        agent_id = str(event.agent_id)
        entry = await self.index.get(agent_id=agent_id)
        if entry is None or entry.status is IndexStatus.DEREGISTERING:
            raise AgentNotFoundError(agent_id)
        self.kinds.resolve(entry.spec.kind).check_event(event)
        await self._enqueue(QueueMessage(target="agent", event=event))
        return event

    async def publish_event(self, event: Event) -> int:
        """Queue an event for every agent subscribed to its type now; returns how many they are.

        The messages name their recipients, so an agent that subscribes later does not receive
        it; one that unsubscribes or is deregistered before delivery does not either. An event
        that some registered kind could never apply is refused (``check_event``). If storage
        fails after some messages were queued, ``PartialPublishError`` says how far it got.
        """
        for kind in self.kinds:  # its subscribers' kinds are not known without reading each
            self.kinds.resolve(kind).check_event(event)
        subscribers = await self.index.subscribers(event_type=event.type)
        texts = broadcast_messages(event, subscribers)
        for sent, text in enumerate(texts):
            try:
                await self.queue.send(message=text)
            except StorageError as exc:
                if sent == 0:
                    raise
                reached = sum(len(json.loads(t)["recipients"]) for t in texts[:sent])
                raise PartialPublishError(
                    event_id=event.event_id, queued=reached, subscribers=len(subscribers)
                ) from exc
        return len(subscribers)

    async def evaluate_alignment(self, agent_id: str, action: Any) -> AlignmentResult:
        """Scoring is CPU work (tens of milliseconds for a large action, and a custom scorer may
        take longer): it runs on a worker thread so the event loop keeps serving other requests."""
        agent = await self._purpose_driven(agent_id)
        return await asyncio.to_thread(agent.score_alignment, action)

    # ------------------------------------------------------------------------------ plumbing
    async def _check_spec(self, spec: AgentSpec, *, replacing: bool) -> None:
        """Refuse what the entity would refuse: an unknown kind, or a spec that, with the agent's
        current goals and state, goes over the budget (a dry run of ``configure`` on the current
        context, so the index never changes while the entity refuses)."""
        self.kinds.resolve(spec.kind)
        state = await self.entities.read(agent_id=spec.agent_id) if replacing else None
        if state is None:
            ContextDocument.create(spec, self.limits)
            return
        document = ContextDocument.load(state)
        agent = self.kinds.resolve(document.kind).from_document(document, limits=self.limits)
        agent.configure(SpecUpdate.model_validate(configure_signal(spec)))

    async def _configure(self, spec: AgentSpec) -> bool:
        expected = spec.model_dump(mode="json")
        await self.entities.signal(
            agent_id=spec.agent_id, operation="configure", value=configure_signal(spec)
        )
        settled, _ = await self.entities.wait_for(
            agent_id=spec.agent_id,
            condition=lambda state: state is not None and state["spec"] == expected,
            within=self.settle_timeout,
        )
        return settled

    async def _indexed(self, agent_id: str, *, allow_deregistering: bool = False) -> IndexEntry:
        entry = await self.index.get(agent_id=agent_id)
        if entry is None or (entry.status is IndexStatus.DEREGISTERING and not allow_deregistering):
            raise AgentNotFoundError(agent_id)
        return entry

    async def _agent(self, agent_id: str) -> PerpetualAgent:
        document = ContextDocument.load(await self.get_context(agent_id))
        return self.kinds.resolve(document.kind).from_document(document, limits=self.limits)

    async def _purpose_driven(self, agent_id: str) -> PurposeDrivenAgent:
        agent = await self._agent(agent_id)
        if not isinstance(agent, PurposeDrivenAgent):
            raise UnknownOperationError(
                f"Agent {agent_id!r} is of kind {agent.document.kind!r}, which has no purpose, "
                "goals or alignment"
            )
        return agent

    async def _goal_change(
        self,
        agent_id: str,
        operation: str,
        payload: dict[str, Any],
        planned: Goal,
        *,
        present: bool,
    ) -> Change:
        await self.entities.signal(agent_id=agent_id, operation=operation, value=payload)
        expected = {k: v for k, v in payload.items() if k != "id"}

        def applied(state: dict[str, Any] | None) -> bool:
            if state is None:
                return False
            goal = next((g for g in state["goals"] if g["id"] == planned.id), None)
            if not present:
                return goal is None
            return goal is not None and all(goal.get(k) == v for k, v in expected.items())

        settled, state = await self.entities.wait_for(
            agent_id=agent_id, condition=applied, within=self.settle_timeout
        )
        stored = next((g for g in (state or {}).get("goals", []) if g["id"] == planned.id), None)
        value = stored if (settled and present and stored) else planned.model_dump(mode="json")
        return Change(value, settled)

    async def _enqueue(self, message: QueueMessage) -> None:
        await self.queue.send(message=encode_message(message))
