"""Agents that think, in process (``AgentManager`` runs the turn loop the orchestration runs):
messages become turns, one turn at a time per agent, tools applied exactly once, approvals,
budgets that fail visibly, a bounded conversation window, and the whole transcript in history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
from pydantic import JsonValue

from aos import AgentManager, GenericPurposeDrivenAgent, PerpetualAgent
from aos.agents import ToolContext, tool
from aos.agents.thinking import kind_tools
from aos.domain.chat import ModelReply, ToolCall, ToolSpec, Usage
from aos.domain.document import worst_case_state_bytes
from aos.domain.history import HistoryQuery
from aos.domain.limits import Limits
from aos.domain.models import Event
from aos.domain.turns import TurnBudget, TurnMessage
from aos.errors import ConfigurationError, LimitExceededError
from aos.ports.models import ChatModel, ModelError

ORDERS: list[dict[str, Any]] = []


class Buyer(GenericPurposeDrivenAgent):
    """Orders stock (needs approval) and looks prices up (does not)."""

    kind: ClassVar[str] = "buyer"
    thinks_about: ClassVar[tuple[str, ...]] = ("stock.low",)

    @tool(needs_approval=True)
    @staticmethod
    def place_order(call: ToolContext, item: str, quantity: int = 1) -> dict[str, Any]:
        """Order stock from the supplier."""
        ORDERS.append({"item": item, "quantity": quantity, "key": call.idempotency_key})
        return {"ordered": item, "quantity": quantity}

    @tool
    @staticmethod
    def price_of(call: ToolContext, item: str) -> float:
        """Look up the price of an item."""
        return {"widget": 2.5}.get(item, 1.0)

    def on_event(self, event: Event) -> JsonValue:
        if event.type == "ponder":
            return {"turn": self.think(f"ponder {event.data}")}
        return super().on_event(event)


class Scripted(ChatModel):
    """A model answering from a list of replies, recording what it was asked."""

    def __init__(self, replies: Sequence[ModelReply | Exception]) -> None:
        self.replies = list(replies)
        self.asked: list[list[dict[str, Any]]] = []

    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]
    ) -> ModelReply:
        self.asked.append([dict(m) for m in messages])
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def calls(*pairs: tuple[str, dict[str, Any] | str]) -> ModelReply:
    made = tuple(
        ToolCall(f"c{i}", name, args if isinstance(args, str) else json.dumps(args))
        for i, (name, args) in enumerate(pairs)
    )
    return ModelReply(None, made, Usage(10, 5), "scripted")


def text(content: str) -> ModelReply:
    return ModelReply(content, (), Usage(10, 5), "scripted")


async def kinds_of(manager: AgentManager, agent_id: str) -> list[str]:
    page = await manager.history.page(agent_id=agent_id, query=HistoryQuery(limit=500))
    return [r.kind for r in reversed(page.records)]


@pytest.fixture(autouse=True)
def _orders() -> None:
    ORDERS.clear()


@pytest.mark.asyncio
async def test_a_message_is_a_turn_that_uses_tools_and_answers() -> None:
    model = Scripted([calls(("update_state", {"key": "mood", "value": "calm"})), text("Done.")])
    manager = AgentManager(model=model)
    manager.register_agent(Buyer("buyer-1", purpose="Keep the shop stocked"))

    outcome = await manager.send_message("buyer-1", "Set your mood to calm", message_id="m-1")

    assert outcome["status"] == "completed"
    assert outcome["reply"] == "Done."
    assert outcome["steps"] == 2
    assert outcome["usage"]["total_tokens"] == 30
    assert outcome["tool_calls"] == [
        {"step": 1, "name": "update_state", "id": "c0", "result": {"key": "mood", "updated": True}}
    ]
    agent = manager.get_agent("buyer-1")
    assert agent is not None
    assert agent.context.state["mood"] == "calm"
    turns = agent.context.turns
    assert turns.active is None
    assert turns.completed == 1
    assert [m.role for m in turns.conversation.messages] == ["user", "assistant"]
    # the model saw the purpose, then the tool's result in the second step
    system = model.asked[0][0]["content"]
    assert "Purpose: Keep the shop stocked" in system
    assert model.asked[1][-1]["role"] == "tool"
    assert sorted(await kinds_of(manager, "buyer-1")) == sorted(
        ["event", "turn_requested", "model_step", "tool_call", "model_step", "turn"]
    )


@pytest.mark.asyncio
async def test_the_same_message_id_is_one_turn() -> None:
    manager = AgentManager(model=Scripted([text("once")]))
    manager.register_agent(Buyer("b"))
    first = await manager.send_message("b", "hello", message_id="same")
    again = await manager.send_message("b", "hello", message_id="same")
    assert first["turn_id"] == again["turn_id"]
    assert len(manager.turn_results) == 1


@pytest.mark.asyncio
async def test_turns_run_one_at_a_time_in_order() -> None:
    manager = AgentManager(model=Scripted([text("first"), text("second"), text("third")]))
    manager.register_agent(Buyer("b"))
    for n in range(3):  # queued while the first is "running": the turns wait for their go
        await manager.send_event("b", {"type": "aos.message", "data": {"content": f"m{n}"}})
    agent = manager.get_agent("b")
    assert agent is not None
    assert agent.context.turns.active is not None
    assert len(agent.context.turns.queued) == 2
    starts = [TurnMessage.model_validate_json(json.dumps({"turn": {
        "agent_id": "b", "turn_id": t, "start": s}})) for t, s in manager.turns.started.items()]  # fmt: skip
    assert [m.turn.start.go for m in starts if m.turn.start] == [True, False, False]

    outcomes = await manager.run_turns()

    assert [o["reply"] for o in outcomes] == ["first", "second", "third"]
    agent = manager.get_agent("b")
    assert agent is not None
    assert agent.context.turns.active is None
    assert agent.context.turns.completed == 3


@pytest.mark.asyncio
async def test_the_queue_of_waiting_turns_is_bounded() -> None:
    manager = AgentManager(model=Scripted([]))
    manager.register_agent(Buyer("b"))
    for n in range(9):
        await manager.send_event("b", {"type": "aos.message", "data": {"content": f"m{n}"}})
    rejected = await manager.send_event("b", {"type": "aos.message", "data": {"content": "x"}})
    agent = manager.get_agent("b")
    assert agent is not None
    assert agent.context.counters.events_failed == 1
    page = await manager.history.page(agent_id="b", query=HistoryQuery(limit=5, kind="failure"))
    assert page.records[0].event_id == rejected.event_id
    assert page.records[0].error is not None
    assert page.records[0].error["type"] == LimitExceededError.__name__


@pytest.mark.asyncio
async def test_a_tool_that_needs_approval_runs_only_when_approved() -> None:
    model = Scripted([calls(("place_order", {"item": "widget", "quantity": 3})), text("Ordered.")])
    seen: list[dict[str, Any]] = []

    def approve(status: dict[str, Any]) -> bool:
        seen.append(dict(status))
        return True

    manager = AgentManager(model=model, approve=approve)
    manager.register_agent(Buyer("b"))
    outcome = await manager.send_message("b", "order 3 widgets")
    assert outcome["status"] == "completed", outcome
    assert outcome["tool_calls"][0].get("result"), outcome
    assert seen[0]["status"] == "waiting_approval"
    assert seen[0]["tool_call"]["name"] == "place_order"
    assert [
        {"item": "widget", "quantity": 3, "key": f"{outcome['turn_id']}:1:0"}
    ] == ORDERS  # the idempotency key: the turn, the step, the call's position


@pytest.mark.asyncio
async def test_a_refused_or_unanswered_approval_never_runs_the_tool() -> None:
    for answer in ({"approve": False, "reason": "too many"}, None):
        model = Scripted([calls(("place_order", {"item": "widget"})), text("Not ordered.")])
        manager = AgentManager(model=model, approve=lambda status, a=answer: a)  # type: ignore[misc]
        manager.register_agent(Buyer("b"))
        outcome = await manager.send_message("b", "order a widget")
        assert outcome["status"] == "completed"
        assert ORDERS == []
        error = outcome["tool_calls"][0]["error"]
        assert ("too many" in error) if answer else ("not approved within" in error)
        tool_message = model.asked[1][-1]
        assert tool_message["role"] == "tool"
        assert "error" in tool_message["content"]


@pytest.mark.asyncio
async def test_bad_tool_calls_are_answered_to_the_model_and_the_turn_goes_on() -> None:
    model = Scripted(
        [
            calls(("update_state", "{not json"), ("nonexistent", {}), ("price_of", {"x": 1})),
            calls(("price_of", {"item": "widget"})),
            text("A widget costs 2.5."),
        ]
    )
    manager = AgentManager(model=model)
    manager.register_agent(Buyer("b"))
    outcome = await manager.send_message("b", "price of a widget?")
    assert outcome["status"] == "completed"
    assert outcome["steps"] == 3
    errors = [c.get("error") for c in outcome["tool_calls"][:3]]
    assert "not JSON" in str(errors[0])
    assert "no tool named 'nonexistent'" in str(errors[1])
    assert "Invalid arguments for price_of" in str(errors[2])
    assert outcome["tool_calls"][3]["result"] == 2.5


@pytest.mark.asyncio
async def test_a_turn_that_never_answers_fails_visibly_at_its_step_budget() -> None:
    model = Scripted([calls(("price_of", {"item": "a"}))] * 3)
    manager = AgentManager(model=model, turn_budget=TurnBudget(max_steps=3))
    manager.register_agent(Buyer("b"))
    outcome = await manager.send_message("b", "loop forever")
    assert outcome["status"] == "failed"
    assert outcome["error"] == "no final answer within 3 steps"
    agent = manager.get_agent("b")
    assert agent is not None
    assert agent.context.turns.failed == 1
    assert agent.context.turns.active is None  # the next turn may run
    page = await manager.history.page(agent_id="b", query=HistoryQuery(limit=1, kind="turn"))
    assert page.records[0].payload_dict()["error"] == "no final answer within 3 steps"


@pytest.mark.asyncio
async def test_a_model_that_cannot_answer_fails_the_turn_and_frees_the_agent() -> None:
    model = Scripted(
        [ModelError("401 Unauthorized", retryable=False, status=401), text("back again")]
    )
    manager = AgentManager(model=model)
    manager.register_agent(Buyer("b"))
    failed = await manager.send_message("b", "hello")
    assert failed["status"] == "failed"
    assert "401 Unauthorized" in failed["error"]
    assert (await manager.send_message("b", "hello again"))["reply"] == "back again"


@pytest.mark.asyncio
async def test_built_in_effects_leave_once_with_ids_derived_from_the_step() -> None:
    model = Scripted(
        [calls(("send", {"agent_id": "peer", "type": "note", "data": {"n": 1}})), text("sent")]
    )
    manager = AgentManager(model=model)
    manager.register_agent(Buyer("b"))
    manager.register_agent(GenericPurposeDrivenAgent("peer"))
    outcome = await manager.send_message("b", "tell peer")
    event_id = outcome["tool_calls"][0]["result"]["event_id"]
    peer = manager.get_agent("peer")
    assert peer is not None
    assert peer.context.last_event is not None
    assert peer.context.last_event.event_id == event_id
    # the step applied again (a repeated operation) changes nothing and emits nothing
    step = {"turn_id": outcome["turn_id"], "step": 1, "at": "2026-01-01T00:00:00Z",
            "reply": {}, "calls": [{"id": "c0", "name": "send", "builtin": True,
                                    "arguments": '{"agent_id": "peer", "type": "note"}'}]}  # fmt: skip
    assert manager.entities.run("b", "apply_turn_step", step)["applied"] is False


@pytest.mark.asyncio
async def test_events_of_a_type_the_kind_thinks_about_start_a_turn() -> None:
    model = Scripted([text("I will restock."), text("pondered")])
    manager = AgentManager(model=model)
    manager.register_agent(Buyer("b"))
    await manager.send_event("b", {"type": "stock.low", "data": {"item": "widget"}})
    await manager.run_turns()
    assert "Event stock.low" in model.asked[0][-1]["content"]
    await manager.send_event("b", {"type": "ponder", "data": "life"})
    await manager.run_turns()
    assert model.asked[1][-1]["content"] == "ponder life"
    assert [o["source"] for o in manager.turn_results.values()] == ["event", "handler"]


@pytest.mark.asyncio
async def test_the_offline_model_calls_named_tools_and_decides() -> None:
    manager = AgentManager()
    manager.register_agent(Buyer("b", purpose="Keep the shop stocked with widgets"))
    named = await manager.send_message("b", 'update_state key=mood value="ready"')
    assert named["offline"] is True
    assert named["model"] == "aos-offline"
    assert named["tool_calls"][0]["result"] == {"key": "mood", "updated": True}
    decided = await manager.send_message(
        "b", "What next? options: stock more widgets, paint the walls"
    )
    assert decided["tool_calls"][0]["name"] == "decide"
    assert decided["tool_calls"][0]["result"]["chosen"] == "stock more widgets"
    plain = await manager.send_message("b", "widgets are selling out")
    assert plain["tool_calls"] == []
    assert "alignment" in plain["reply"]


@pytest.mark.asyncio
async def test_the_conversation_window_stays_within_its_budget() -> None:
    long = "word " * 3000
    manager = AgentManager(model=Scripted([text(long + str(n)) for n in range(30)]))
    manager.register_agent(Buyer("b"))
    for n in range(30):
        await manager.send_message("b", f"{long[:10_000]} {n} ✨")
    agent = manager.get_agent("b")
    assert agent is not None
    conversation = agent.context.turns.conversation
    stored = len(json.dumps(conversation.model_dump(mode="json")))
    assert stored <= Limits().conversation_bytes
    assert conversation.summary
    assert conversation.messages[-1].role == "assistant"
    assert agent.document.size_bytes() <= worst_case_state_bytes(Limits()) <= 32_768


def test_tools_get_their_schema_from_type_hints() -> None:
    tools = kind_tools(Buyer)
    schema = tools["place_order"].spec.parameters
    assert schema["required"] == ["item"]
    assert schema["properties"]["quantity"] == {
        "default": 1,
        "title": "Quantity",
        "type": "integer",
    }
    assert tools["place_order"].needs_approval
    assert not tools["price_of"].needs_approval
    assert tools["price_of"].spec.description == "Look up the price of an item."
    with pytest.raises(ConfigurationError):
        tool(name="send")(lambda call: None)  # a built-in's name
    with pytest.raises(ConfigurationError):
        tool(name="no_context")(lambda: None)


def test_think_outside_a_handler_says_how_to_start_a_turn() -> None:
    agent = PerpetualAgent("lonely")
    with pytest.raises(Exception, match="POST /api/agents"):
        agent.think("hello")


@pytest.mark.asyncio
async def test_an_agent_may_require_approval_for_built_in_tools() -> None:
    model = Scripted([calls(("update_state", {"key": "k", "value": 1})), text("asked")])
    asked: list[dict[str, Any]] = []

    def refuse(status: dict[str, Any]) -> bool:
        asked.append(dict(status))
        return False

    manager = AgentManager(model=model, approve=refuse)
    manager.register_agent(Buyer("b", requires_approval=["update_state"]))
    outcome = await manager.send_message("b", "set k")
    assert asked[0]["tool_call"]["name"] == "update_state"
    assert outcome["tool_calls"][0]["error"] == "refused"
    agent = manager.get_agent("b")
    assert agent is not None
    assert agent.context.state == {}


@pytest.mark.asyncio
async def test_the_seed_api_judges_with_the_model_and_falls_back_to_the_scorer() -> None:
    options = {"options": ["paint the walls", "stock more widgets"], "decision_id": "d-1"}
    judged = Scripted(
        [
            text('{"scores": [0.9, 0.2], "rationale": "fresh walls sell widgets"}'),
            text('```json\n{"score": 0.42, "reasons": ["half related"]}\n```'),
            text("I would rather not say"),
            ModelError("unavailable", retryable=True, status=503),
        ]
    )
    manager = AgentManager(model=judged)
    agent = manager.register_agent(Buyer("b", purpose="Keep the shop stocked with widgets"))
    assert isinstance(agent, GenericPurposeDrivenAgent)
    decision = await agent.make_purpose_driven_decision(options)
    assert decision.chosen == "paint the walls"  # the model's choice, not the scorer's
    assert "fresh walls sell widgets" in decision.rationale
    assert await agent.evaluate_purpose_alignment("widgets") == 0.42
    lexical = agent.score_alignment("stock more widgets").score
    assert await agent.evaluate_purpose_alignment("stock more widgets") == lexical  # not JSON
    assert await agent.evaluate_purpose_alignment("stock more widgets") == lexical  # raised
    offline = AgentManager().register_agent(Buyer("o", purpose="Keep the shop stocked"))
    assert isinstance(offline, GenericPurposeDrivenAgent)
    assert offline.model is None  # no model given: the scorer decides, as before


@pytest.mark.asyncio
async def test_a_turn_whose_orchestration_died_is_abandoned_at_its_deadline() -> None:
    """A turn's orchestration terminated by hand (or lost) never ends its turn: past the
    deadline begin_turn recorded, the next turn the agent is asked for releases it."""
    manager = AgentManager(model=Scripted([text("the new one")]))
    manager.register_agent(Buyer("b"))
    await manager.send_event("b", {"type": "aos.message", "data": {"content": "lost"}})
    (lost,) = manager.turns.started
    begun = manager.entities.run(
        "b", "begin_turn", {"turn_id": lost, "deadline": "2020-01-01T00:00:00Z"}
    )
    assert begun["status"] == "go"  # ... and then its orchestration is gone
    manager.turns.started.pop(lost)

    outcome = await manager.send_message("b", "still there?")

    assert outcome["status"] == "completed"
    assert outcome["reply"] == "the new one"
    agent = manager.get_agent("b")
    assert agent is not None
    assert (agent.context.turns.failed, agent.context.turns.completed) == (1, 1)
    page = await manager.history.page(agent_id="b", query=HistoryQuery(limit=10, kind="turn"))
    errors = {r.payload_dict()["turn_id"]: r.payload_dict()["error"] for r in page.records}
    assert errors[lost] == "abandoned: its orchestration did not end it by its deadline"


@pytest.mark.asyncio
async def test_deregistering_ends_the_running_and_waiting_turns() -> None:
    """Waiting turns are woken to hear the agent is gone; the running one stops at its next
    step instead of asking the model again."""
    manager = AgentManager()
    woken: list[str] = []

    class DeregisteringModel(Scripted):
        async def complete(
            self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]
        ) -> ModelReply:
            reply = await super().complete(messages, tools)
            if len(self.asked) == 1:  # the agent goes away while its model answers
                manager.entities.run("b", "deregister")
                woken.extend(json.loads(t)["turn"]["turn_id"] for t in manager.queue.take())
            return reply

    model = DeregisteringModel([calls(("price_of", {"item": "a"})), text("never asked")])
    manager.model = model
    manager.register_agent(Buyer("b"))
    for n in range(3):
        await manager.send_event("b", {"type": "aos.message", "data": {"content": f"m{n}"}})
    running, *waiting = manager.turns.started

    outcomes = {o["turn_id"]: o for o in await manager.run_turns()}
    assert woken == waiting
    manager.turns.woken.extend(woken)
    outcomes |= {o["turn_id"]: o for o in await manager.run_turns()}

    assert outcomes[running]["error"] == "the agent no longer has this turn (deregistered?)"
    assert len(model.asked) == 1  # the step after the agent went away was not asked for
    for turn_id in waiting:
        assert outcomes[turn_id]["status"] == "failed"
        assert outcomes[turn_id]["error"] == "the agent does not have this turn"
