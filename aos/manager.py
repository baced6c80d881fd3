"""``AgentManager``: the seed's manager, for agents created, registered, found and driven in one
Python process (a script, a notebook, a test) with their context kept by a context store.

    manager = AgentManager()
    ceo = LeadershipAgent(agent_id="ceo", purpose="Strategic oversight", adapter_name="ceo")
    await ceo.initialize()
    manager.register_agent(ceo)
    manager.get_agent("ceo")            # the same agent, its context as last stored
    await manager.send_event("ceo", {"type": "goal.proposed", "data": {...}})

It runs the app's own logic -- ``AgentService``, the queue delivery and the ``agent`` entity's
operations -- over the in-memory adapters (``aos.adapters.memory``), so an event sent here is
validated, queued, delivered and applied exactly as in Azure, only at once and in memory. In the
function app, agents are registered over HTTP instead (``POST /api/agents``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aos.adapters.memory import (
    InMemoryAgentIndex,
    InMemoryDeliveryReceipts,
    InMemoryEntities,
    InMemoryEventQueue,
    InMemoryReminderScheduler,
    InMemoryTurnScheduler,
)
from aos.agents import AgentKinds, PerpetualAgent, PurposeDrivenAgent
from aos.agents.entity import AgentEntity
from aos.domain.contexts import ContextServer, ContextStore
from aos.domain.document import ContextDocument
from aos.domain.effects import DEFAULT_MAX_HOPS
from aos.domain.history import InMemoryHistoryArchive
from aos.domain.limits import Limits
from aos.domain.models import Event, new_id, utc_now
from aos.domain.turns import MESSAGE_EVENT_TYPE, TurnBudget, TurnStart, turn_id_for
from aos.domain.validation import parse
from aos.errors import AgentExistsError
from aos.ports.index import IndexEntry, IndexStatus
from aos.ports.models import ChatModel
from aos.services.agents import AgentService
from aos.services.delivery import EventDelivery
from aos.services.offline_model import OfflineModel
from aos.services.turn_steps import model_step, run_tool
from aos.services.turns import drive_in_process, run_turn

Approver = Callable[[dict[str, Any]], "dict[str, Any] | bool | None"]
"""Answers a tool call waiting for approval (the turn's status: ``tool_call``, ``step``) with
``True``/``False``, ``{"approve": ..., "reason": ...}``, or ``None`` (no answer: it times out)."""

__all__ = ["AgentManager"]


class _EntityStates(ContextServer):
    """The context server agents registered here save through: the in-memory entities' state."""

    def __init__(self, entities: InMemoryEntities) -> None:
        self.entities = entities

    async def load(self, *, agent_id: str) -> dict[str, Any] | None:
        return self.entities.state(agent_id)

    async def save(self, *, agent_id: str, context: dict[str, Any]) -> None:
        self.entities.load(agent_id, context)

    async def delete(self, *, agent_id: str) -> None:
        self.entities.remove(agent_id)


class AgentManager:
    """Registers agent objects, finds them again, and delivers events to them, in process."""

    def __init__(
        self,
        *,
        kinds: AgentKinds | None = None,
        limits: Limits | None = None,
        max_hops: int = DEFAULT_MAX_HOPS,
        model: ChatModel | None = None,
        approve: Approver | None = None,
        turn_budget: TurnBudget | None = None,
    ) -> None:
        self.model: ChatModel = model if model is not None else OfflineModel()
        self._judge = model
        self.approve = approve
        self.turn_budget = turn_budget if turn_budget is not None else TurnBudget()
        self.turns = InMemoryTurnScheduler()
        self.turn_results: dict[str, dict[str, Any]] = {}
        """Every turn run here, by id: what the orchestration would return."""
        self.kinds = kinds if kinds is not None else AgentKinds.builtin()
        self.limits = limits if limits is not None else Limits()
        self.history = InMemoryHistoryArchive()
        self.index = InMemoryAgentIndex()
        self.queue = InMemoryEventQueue()
        self.reminders = InMemoryReminderScheduler()
        receipts = InMemoryDeliveryReceipts()
        self.entities = InMemoryEntities(
            AgentEntity(self.kinds, self.limits),
            history=self.history,
            receipts=receipts,
            effects=self.queue,
        )
        self.contexts = ContextStore(states=_EntityStates(self.entities), archive=self.history)
        self.service = AgentService(
            index=self.index, queue=self.queue, entities=self.entities, kinds=self.kinds,
            limits=self.limits, receipts=receipts, settle_timeout=0.0, contexts=self.contexts,
        )  # fmt: skip
        self._delivery = EventDelivery(
            index=self.index,
            queue=self.queue,
            entities=self.entities,
            receipts=receipts,
            max_hops=max_hops,
            reminders=self.reminders,
            turns=self.turns,
        )
        self._agents: dict[str, PerpetualAgent] = {}

    # ------------------------------------------------------------------------------ the seed's API
    def register_agent(self, agent: PerpetualAgent) -> PerpetualAgent:
        """Make ``agent`` available: its context is kept by this manager's context store from now
        on (``agent.context_server``), and events reach it. ``AgentExistsError`` if the id is
        taken. An agent class whose kind is not registered yet is registered with it."""
        if agent.agent_id in self._agents:
            raise AgentExistsError(agent.agent_id)
        if agent.kind not in self.kinds:
            self.kinds.register(type(agent))
        self.index.put(IndexEntry(spec=agent.spec, status=IndexStatus.ACTIVE))
        self.entities.load(agent.agent_id, agent.document.raw)
        agent.context_server = self.contexts
        if (
            self._judge is not None
            and isinstance(agent, PurposeDrivenAgent)
            and agent.model is None
        ):
            agent.model = self._judge  # the seed's async API judges with the manager's model
        self._agents[agent.agent_id] = agent
        return agent

    def get_agent(self, agent_id: str) -> PerpetualAgent | None:
        """The registered agent, with its context as last stored (``None`` if unknown)."""
        agent = self._agents.get(agent_id)
        if agent is not None:
            state = self.entities.state(agent_id)
            if state is not None and state is not agent.document.raw:
                agent.document = ContextDocument.load(state)
        return agent

    def list_agents(self) -> list[PerpetualAgent]:
        """Every registered agent, by id."""
        return [a for a in map(self.get_agent, sorted(self._agents)) if a is not None]

    def deregister_agent(self, agent_id: str) -> bool:
        """Remove an agent (its history stays readable through ``contexts``); ``False`` if it was
        not registered."""
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return False
        self.index.remove(agent_id)
        self.entities.remove(agent_id)
        return True

    # ------------------------------------------------------------------------------ events
    async def send_event(self, agent_id: str, event: Event | Mapping[str, Any]) -> Event:
        """Send an event to one agent and deliver it now (the HTTP API's ``POST …/events``)."""
        fields = event.model_dump(exclude_unset=True) if isinstance(event, Event) else event
        sent = await self.service.send_event(
            parse(Event, {**fields, "agent_id": agent_id}, what="event")
        )
        await self.deliver_queued()
        return sent

    async def publish_event(self, event: Event | Mapping[str, Any]) -> int:
        """Publish an event to every subscriber of its type and deliver it now; how many."""
        fields = event.model_dump(exclude_unset=True) if isinstance(event, Event) else event
        count = await self.service.publish_event(parse(Event, {**fields}, what="event"))
        await self.deliver_queued()
        return count

    async def fire_due_reminders(self, now: datetime | None = None) -> int:
        """Play the reminder orchestrations' part up to ``now``: fire every reminder due by then
        (each once, however many intervals passed) and deliver what follows. How many fired.
        In the function app a durable timer does this on time; here the caller says when."""
        now = now or utc_now()
        fired = 0
        for instance, fire in list(self.reminders.pending.items()):
            if datetime.fromisoformat(fire["due"].replace("Z", "+00:00")) > now:
                continue
            del self.reminders.pending[instance]
            answer = self.entities.run(fire["agent_id"], "fire_reminder", fire)
            fired += bool(answer and answer.get("fired"))
            upcoming = answer.get("next") if answer else None
            if upcoming:  # continue as new: the same instance waits for the next time
                self.reminders.pending[instance] = {**fire, **upcoming}
        await self.deliver_queued()
        return fired

    async def deliver_queued(self) -> None:
        """Deliver every event waiting in the queue now, then what the agents sent and published
        in turn, until the queue is empty (every round adds a hop, so the hop limit ends it).
        Events this manager sends are delivered at once; this is also for events queued by other
        callers of its service, such as MCP tools."""
        while texts := self.queue.take():
            for text in texts:
                await self._delivery.deliver(body=text.encode(), message_id=new_id())

    # ------------------------------------------------------------------------------ thinking
    async def send_message(
        self, agent_id: str, content: str, *, message_id: str | None = None
    ) -> dict[str, Any]:
        """Say something to an agent and let it think (``POST …/messages``): the turn runs now,
        with this manager's model (the offline model unless one was given), and its outcome
        (status, reply, tool calls, usage) is returned. The same ``message_id`` twice is one
        turn."""
        event: dict[str, Any] = {"type": MESSAGE_EVENT_TYPE, "data": {"content": content}}
        if message_id is not None:
            event["event_id"] = message_id
        sent = await self.send_event(agent_id, event)
        turn_id = turn_id_for(agent_id, sent.event_id)
        await self.run_turns()
        return self.turn_results.get(turn_id) or {"turn_id": turn_id, "status": "queued"}

    async def run_turns(self) -> list[dict[str, Any]]:
        """Play the turn orchestrations' part: run every turn that may run (asked for, or woken
        after the one before it ended), and deliver what they cause, until none is left. The
        outcomes of the turns run, in order."""
        outcomes: list[dict[str, Any]] = []
        while True:
            runnable = [
                (turn_id, start)
                for turn_id, start in self.turns.started.items()
                if turn_id not in self.turn_results
                and (start.get("go") or turn_id in self.turns.woken)
            ]
            if not runnable:
                return outcomes
            for turn_id, start in runnable:
                outcome = await self._run_turn(TurnStart.model_validate(start))
                self.turn_results[turn_id] = outcome
                outcomes.append(outcome)
                await self.deliver_queued()

    async def _run_turn(self, start: TurnStart) -> dict[str, Any]:
        async def call_entity(operation: str, payload: dict[str, Any]) -> Any:
            return self.entities.run(start.agent_id, operation, payload)

        async def call_model(payload: dict[str, Any]) -> dict[str, Any]:
            return await model_step(payload, lambda _adapter: self.model)

        async def call_tool(payload: dict[str, Any]) -> dict[str, Any]:
            return await run_tool(payload, self.kinds)

        status: dict[str, Any] = {}

        async def wait_for_event(name: str, _timeout: float | None) -> Any:
            if name == "wake":  # only turns that may run are run here
                return {"wake": True}
            if self.approve is None:
                return None
            answer = self.approve(status)
            return {"approve": answer} if isinstance(answer, bool) else answer

        return await drive_in_process(
            run_turn(start, self.turn_budget),
            call_entity=call_entity, call_model=call_model, call_tool=call_tool,
            wait_for_event=wait_for_event, now=utc_now, on_status=status.update,
        )  # fmt: skip
