"""aos.client (sync and async) against the AOS app under `python -m devhost`, over real HTTP.

One host serves the module (each test uses its own agent ids); events are asynchronous, so their
effects are awaited by bounded polling, and nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aos_e2e_support import SETTLE_SECONDS, wait_for
from client_support import (
    MAX_GOALS,
    module_host,
    new_id,
    put_undeliverable_message,
)
from process_host import HostProcess

from aos.client import (
    AgentDetail,
    AgentResource,
    AosClient,
    AsyncAosClient,
    ConflictError,
    Goal,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    ServiceError,
    TurnResource,
)
from devhost.azurite import Azurite, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

PURPOSE = "Keep the company financially healthy"


@pytest.fixture(scope="module")
def served(
    azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HostProcess, dict[str, str]]]:
    with module_host(azurite, tmp_path_factory.mktemp("client")) as found:
        yield found


@pytest.fixture
def host(served: tuple[HostProcess, dict[str, str]]) -> HostProcess:
    return served[0]


@pytest.fixture
def client(host: HostProcess) -> Iterator[AosClient]:
    with AosClient(host.base_url) as aos:
        yield aos


def agent(agent_id: str, **fields: Any) -> dict[str, Any]:
    return {"agent_id": agent_id, "purpose": PURPOSE, **fields}


def history_length(client: AosClient, agent_id: str, at_least: int) -> int | None:
    count = len(list(client.list_history(agent_id)))
    return count if count >= at_least else None


def test_agents_register_put_get_list_update_delete(client: AosClient) -> None:
    cfo = new_id("cfo")
    created = client.register_agent(agent(cfo, subscriptions=["invoice.paid"]))
    assert isinstance(created, AgentResource)
    assert (created.agent_id, created.status, created.subscriptions) == (
        cfo,
        "active",
        ("invoice.paid",),
    )
    with pytest.raises(ConflictError) as conflict:
        client.register_agent(agent(cfo))
    assert conflict.value.status == 409
    assert conflict.value.problem is not None
    assert conflict.value.problem["type"] == "urn:aos:problem:conflict"

    replaced = client.put_agent(cfo, {"kind": "leadership", "purpose": "Grow the company"})
    assert (replaced.kind, replaced.purpose, replaced.subscriptions) == (
        "leadership",
        "Grow the company",
        (),
    )
    changed = client.update_agent(cfo, {"purpose_scope": "Budgets"})
    assert (changed.purpose, changed.purpose_scope) == ("Grow the company", "Budgets")

    context = client.get_agent(cfo)
    assert isinstance(context, AgentDetail)
    assert context.purpose_scope == "Budgets"

    client.delete_agent(cfo, purge=True)
    with pytest.raises(NotFoundError) as missing:
        client.get_agent(cfo)
    assert missing.value.status == 404
    assert cfo in str(missing.value)


def test_a_purge_runs_in_the_background_under_the_local_host(
    client: AosClient, host: HostProcess
) -> None:
    """The DELETE answers 202 at once; the local host runs the purge's queue messages."""
    import httpx

    ops = new_id("ops")
    client.register_agent(agent(ops))
    for n in range(3):
        client.send_event(ops, {"event_id": f"p{n}", "type": "invoice.paid", "data": {}})
    wait_for(lambda: history_length(client, ops, 3), "3 events in the history")
    with httpx.Client(base_url=host.base_url) as http:
        deleted = http.delete(f"/api/agents/{ops}", params={"purge": "true"})
        assert deleted.status_code == 202, deleted.text
        status_url = deleted.headers["location"]
        assert status_url.endswith(f"/api/agents/{ops}/purge")

        def done() -> dict[str, Any] | None:
            body: dict[str, Any] = http.get(status_url).json()
            return body if body["status"] == "done" else None

        finished = wait_for(done, "the purge to finish")
        assert finished["history_deleted"] == 3
        assert finished["receipts_deleted"] == 3
        assert http.get(f"/api/agents/{ops}/history").status_code == 404
    job = client.get_purge(ops)  # the same, through the client
    assert (job.status, job.history_deleted, job.receipts_deleted) == ("done", 3, 3)
    with pytest.raises(NotFoundError):
        client.get_purge(new_id("never"))


def test_lists_follow_next_link(client: AosClient) -> None:
    ids = {new_id("pager") for _ in range(5)}
    for agent_id in ids:
        client.put_agent(agent_id, {"purpose": PURPOSE})
    listed = [a.agent_id for a in client.list_agents(page_size=2)]
    assert ids <= set(listed)
    assert len(listed) == len(set(listed))  # each agent once across the pages
    assert listed == [a.agent_id for a in client.list_agents(page_size=200)]


def test_goals_add_list_get_update_remove_and_the_limit(client: AosClient) -> None:
    ops = new_id("ops")
    client.register_agent(agent(ops))
    goal = client.add_goal(ops, {"id": "uptime", "description": "99.9% uptime"})
    assert isinstance(goal, Goal)
    assert (goal.id, goal.status) == ("uptime", "pending")
    client.add_goal(ops, {"description": "Fewer pages at night"})
    assert next(g.id for g in client.list_goals(ops)) == "uptime"
    updated = client.update_goal(ops, "uptime", {"status": "in_progress", "progress": 0.4})
    assert (updated.status, updated.progress) == ("in_progress", 0.4)
    assert client.get_goal(ops, "uptime") == updated

    client.add_goal(ops, {"description": "A third goal"})
    with pytest.raises(LimitExceededError) as limit:
        client.add_goal(ops, {"description": f"goal {MAX_GOALS + 1}"})
    assert limit.value.status == 422

    client.remove_goal(ops, "uptime")
    with pytest.raises(NotFoundError):
        client.get_goal(ops, "uptime")
    assert len(list(client.list_goals(ops))) == MAX_GOALS - 1


def test_invalid_input_names_the_fields(client: AosClient) -> None:
    with pytest.raises(InvalidInputError) as bad_path:
        client.get_agent("not an id!")
    assert bad_path.value.status == 400
    assert [e.loc for e in bad_path.value.errors] == [("path", "agent_id")]
    with pytest.raises(InvalidInputError) as bad_body:  # checked before sending
        client.send_event("cfo", {"type": "not a type!", "priority": 1})
    assert {e.loc for e in bad_body.value.errors} == {("body", "type"), ("body", "priority")}
    with pytest.raises(NotFoundError):
        client.send_event(new_id("nobody"), {"type": "invoice.paid"})


def test_events_history_alignment_and_health(client: AosClient) -> None:
    cfo = new_id("cfo")
    client.register_agent(agent(cfo, subscriptions=["market.update"]))
    accepted = client.send_event(
        cfo,
        {"event_id": "inv-1", "type": "invoice.paid", "data": {"amount": 10}},
        correlation_id="c-7",
    )
    assert (accepted.event_id, accepted.agent_id, accepted.correlation_id) == ("inv-1", cfo, "c-7")
    published = client.publish_event({"type": "market.update", "data": {"index": "up"}})
    assert published.subscribers >= 1
    client.send_event(cfo, {"type": "decision.requested", "data": {"options": ["save", "spend"]}})

    wait_for(lambda: history_length(client, cfo, 4), "3 events and a decision in the history")
    records = list(client.list_history(cfo, page_size=1))  # one request per record
    assert [r.sequence for r in records] == sorted((r.sequence for r in records), reverse=True)
    assert {r.kind for r in records} == {"event", "decision"}
    paid = list(client.list_history(cfo, types=["invoice.paid"], kind="event"))
    assert [r.event_id for r in paid] == ["inv-1"]
    assert paid[0].payload["data"] == {"amount": 10}
    assert client.latest_sequence(cfo) == records[0].sequence

    # follow: records after a sequence, oldest first (the event is archived before the poll, so
    # the first poll returns it and nothing waits on the iterator)
    before = client.latest_sequence(cfo)
    client.send_event(cfo, {"event_id": "inv-2", "type": "invoice.paid"})
    wait_for(lambda: client.latest_sequence(cfo) > before, "inv-2 in the history")
    follow = client.follow_history(cfo, after=before, poll_interval=0.1)
    assert next(follow).event_id == "inv-2"
    follow.close()

    scored = client.evaluate_alignment(cfo, "improve cash flow to keep the company healthy")
    assert 0.0 < scored.score <= 1.0
    assert scored.agent_id == cfo
    assert client.health().status == "ok"
    assert client.openapi()["openapi"].startswith("3.1")


def test_reminders_set_list_cancel(client: AosClient) -> None:
    agent_id = new_id("rem")
    client.register_agent(agent(agent_id))
    reminder = client.set_reminder(
        agent_id, "weekly", {"type": "review.due", "after_seconds": 3600, "every_seconds": 604800}
    )
    assert reminder.reminder_id == "weekly"
    assert [r.reminder_id for r in client.list_reminders(agent_id)] == ["weekly"]
    client.cancel_reminder(agent_id, "weekly")
    assert list(client.list_reminders(agent_id)) == []
    with pytest.raises(NotFoundError):
        client.cancel_reminder(agent_id, "weekly")
    with pytest.raises(InvalidInputError):
        client.set_reminder(agent_id, "bad", {"type": "review.due"})  # no time given


def test_ask_thinks_with_the_offline_model_and_turns_are_readable(client: AosClient) -> None:
    agent_id = new_id("thinker")
    client.register_agent(agent(agent_id, kind="generic"))
    turn = client.ask(agent_id, 'update_state key=mood value="calm"', timeout=SETTLE_SECONDS)
    assert turn.status == "completed", turn
    assert (turn.offline, turn.model, turn.source) == (True, "aos-offline", "message")
    assert turn.tool_calls is not None
    assert turn.tool_calls[0].name == "update_state"
    assert turn.reply
    wait_for(lambda: client.get_agent(agent_id).state.get("mood") == "calm", "state mood=calm")
    assert client.get_turn(agent_id, turn.turn_id) == turn

    # the same message_id twice is one turn; options make the offline model call decide
    message_id = new_id("msg")
    first = client.send_message(
        agent_id, "options: ship today, ship next week", message_id=message_id
    )
    again = client.send_message(
        agent_id, "options: ship today, ship next week", message_id=message_id
    )
    assert (first.turn_id, first.status) == (again.turn_id, "queued")
    assert first.message_id == message_id
    decided = client.wait_for_turn(agent_id, first.turn_id, timeout=SETTLE_SECONDS)
    assert decided.status == "completed", decided
    assert decided.tool_calls is not None
    assert decided.tool_calls[0].name == "decide"

    plain = client.ask(agent_id, "How is the company doing?", timeout=SETTLE_SECONDS)
    assert plain.status == "completed"
    assert plain.reply
    assert plain.tool_calls in (None, [])


def test_turn_errors(client: AosClient) -> None:
    agent_id = new_id("thinker")
    client.register_agent(agent(agent_id, kind="generic"))
    turn = client.ask(agent_id, "Hello", timeout=SETTLE_SECONDS)
    with pytest.raises(ConflictError) as caught:  # it waits for no approval
        client.approve_turn(agent_id, turn.turn_id, True)
    assert caught.value.status == 409
    with pytest.raises(ConflictError):
        client.approve_turn(agent_id, turn.turn_id, False, reason="no")
    with pytest.raises(NotFoundError):
        client.send_message(new_id("nobody"), "Hello")
    with pytest.raises(NotFoundError):
        client.get_turn(agent_id, "turn-" + "f" * 32)
    with pytest.raises(InvalidInputError) as invalid:  # checked before sending
        client.send_message(agent_id, "")
    assert invalid.value.status is None


def test_an_unreachable_service_is_a_service_error() -> None:
    with AosClient(f"http://127.0.0.1:{free_port()}") as aos, pytest.raises(ServiceError) as caught:
        aos.health()
    assert caught.value.status is None
    assert "could not reach" in str(caught.value)


def test_dead_letters_list_get_replay(
    client: AosClient, served: tuple[HostProcess, dict[str, str]]
) -> None:
    _, env = served
    put_undeliverable_message(env, "client test: not json")

    def dead_lettered() -> Any:
        return next(
            (
                d
                for d in client.list_dead_letters(page_size=1)
                if d.original and "client test" in str(d.original)
            ),
            None,
        )

    item = wait_for(dead_lettered, "the message in the dead letters")
    assert item.queue == "deadletter"
    assert client.get_dead_letter(item.id).id == item.id
    replayed = client.replay_dead_letter(item.id)
    assert (replayed.id, replayed.status) == (item.id, "replayed")
    assert isinstance(list(client.list_dead_letters(poison=True)), list)


def test_the_async_client(host: HostProcess) -> None:
    async def run() -> None:
        async with AsyncAosClient(host.base_url) as aos:
            ceo = new_id("ceo")
            created = await aos.register_agent(agent(ceo, kind="leadership"))
            assert created.kind == "leadership"
            with pytest.raises(ConflictError):
                await aos.register_agent(agent(ceo))
            await aos.put_agent(new_id("other"), {"purpose": PURPOSE})
            listed = [a.agent_id async for a in aos.list_agents(page_size=1)]
            assert ceo in listed
            assert len(listed) == len(set(listed)) >= 2
            await aos.update_agent(ceo, {"subscriptions": ["market.update"]})
            goal = await aos.add_goal(ceo, {"id": "growth", "description": "Grow revenue"})
            assert [g.id async for g in aos.list_goals(ceo)] == [goal.id]
            await aos.update_goal(ceo, "growth", {"progress": 0.5})
            assert (await aos.get_goal(ceo, "growth")).progress == 0.5
            await aos.remove_goal(ceo, "growth")

            # follow: a new event arrives while the iterator polls (the wait is bounded)
            after = await aos.latest_sequence(ceo)
            follow = aos.follow_history(ceo, after=after, poll_interval=0.1)
            waiting = asyncio.ensure_future(anext(follow))
            await aos.send_event(ceo, {"event_id": "evt-a", "type": "market.update"})
            first = await asyncio.wait_for(waiting, SETTLE_SECONDS)
            assert first.event_id == "evt-a"
            await follow.aclose()
            published = await aos.publish_event({"type": "market.update"})
            assert published.subscribers >= 1
            history = [r.event_id async for r in aos.list_history(ceo, page_size=1)]
            assert "evt-a" in history
            scored = await aos.evaluate_alignment(ceo, {"type": "expand", "target": "new markets"})
            assert scored.agent_id == ceo
            assert (await aos.health()).status == "ok"
            assert "paths" in await aos.openapi()
            context = await aos.get_agent(ceo)
            assert context.subscriptions == ("market.update",)
            await aos.delete_agent(ceo)
            with pytest.raises(NotFoundError):
                await aos.get_agent(ceo)

    asyncio.run(run())


def test_the_async_client_asks(host: HostProcess) -> None:
    async def run() -> None:
        async with AsyncAosClient(host.base_url) as aos:
            agent_id = new_id("thinker")
            await aos.register_agent(agent(agent_id, kind="generic"))
            turn = await aos.ask(
                agent_id, 'update_state key=mood value="calm"', timeout=SETTLE_SECONDS
            )
            assert isinstance(turn, TurnResource)
            assert turn.status == "completed", turn
            assert turn.tool_calls is not None
            assert turn.tool_calls[0].name == "update_state"
            assert (await aos.get_turn(agent_id, turn.turn_id)).turn_id == turn.turn_id
            with pytest.raises(ConflictError):
                await aos.approve_turn(agent_id, turn.turn_id, True)

    asyncio.run(run())
