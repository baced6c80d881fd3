"""The ``agent`` entity through the durable SDK's own entity path, with the host's batch JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from entity_driver import EntityDriver, entity_handle, event, make_app, operation

from aos import Limits
from aos.domain.models import AgentContext

SPEC = {
    "kind": "generic",
    "purpose": "Grow revenue through customer satisfaction",
    "purpose_scope": "Sales, pricing and customer support",
    "success_criteria": ["Revenue growth", "Customer satisfaction"],
}


@pytest.fixture(scope="module")
def handle() -> Any:
    return entity_handle(make_app())


@pytest.fixture
def driver(handle: Any) -> EntityDriver:
    return EntityDriver(handle)


def test_configure_creates_the_agent_and_returns_its_summary(driver: EntityDriver) -> None:
    batch = driver.run(operation("configure", SPEC))
    assert batch.exists
    summary = batch.result(0)
    assert summary["agent_id"] == "agent-1"
    assert summary["purpose"] == SPEC["purpose"]
    assert summary["counters"] == {
        "events_handled": 0,
        "duplicates_ignored": 0,
        "decisions_made": 0,
        "events_failed": 0,
    }
    context = AgentContext.model_validate(batch.state)
    assert context.spec.success_criteria == ("Revenue growth", "Customer satisfaction")


def test_several_operations_in_one_batch_run_in_order(driver: EntityDriver) -> None:
    batch = driver.run(
        operation("configure", SPEC),
        operation("add_goal", {"id": "g1", "description": "Raise repeat purchases"}),
        operation("update_state", {"key": "region", "value": "emea"}),
        operation("handle_event", event("e1")),
        operation("update_goal", {"id": "g1", "status": "in_progress", "progress": 0.25}),
        operation("get"),
    )
    assert [r["isError"] for r in batch.results] == [False] * 6
    context = batch.result(5)
    assert context["state"] == {"region": "emea"}
    assert context["goals"][0]["status"] == "in_progress"
    assert context["last_event"]["event_id"] == "e1"
    assert context["counters"]["events_handled"] == 1
    assert batch.result(3) == {"event_id": "e1", "status": "applied", "sequence": 1, "result": None}
    assert batch.result(2) is None  # update_state returns nothing, not the previous result


def test_a_failing_operation_leaves_state_untouched_and_later_operations_run(
    driver: EntityDriver,
) -> None:
    driver.run(operation("configure", SPEC), operation("handle_event", event("e1")))
    before = driver.state_text
    batch = driver.run(
        operation("update_goal", {"id": "missing", "status": "achieved"}),
        operation("handle_event", {"type": "x", "unexpected": True}),
        operation("add_goal", {"description": ""}),
        operation("configure", {"kind": "no-such-kind"}),
        operation("handle_event", event("e2")),
    )
    assert [r["isError"] for r in batch.results] == [True, True, True, True, False]
    assert "does not exist" in batch.error(0)
    assert "unexpected" in batch.error(1)
    assert "description" in batch.error(2)
    assert "no-such-kind" in batch.error(3)
    state = batch.state
    assert state["counters"]["events_handled"] == 2
    assert state["goals"] == []
    previous = json.loads(before or "")
    assert state["spec"] == previous["spec"]
    assert [e["event_id"] for e in state["recent_events"]] == ["e1", "e2"]


def test_a_failing_batch_alone_does_not_change_the_stored_state(driver: EntityDriver) -> None:
    driver.run(operation("configure", SPEC))
    before = driver.state_text
    driver.run(operation("update_state", {"key": "last_event", "value": 1}))
    assert json.loads(driver.stored) == json.loads(before or "")


def test_duplicate_events_are_applied_once(driver: EntityDriver) -> None:
    driver.run(operation("configure", SPEC))
    batch = driver.run(
        operation("handle_event", event("dup")),
        operation("handle_event", event("dup")),
    )
    assert batch.result(1) == {"event_id": "dup", "status": "duplicate"}
    # ...and across batches, after a JSON round trip of the state (what persistence is)
    again = driver.run(operation("handle_event", event("dup")))
    assert again.result(0)["status"] == "duplicate"
    counters = again.state["counters"]
    assert counters == {
        "events_handled": 1,
        "duplicates_ignored": 2,
        "decisions_made": 0,
        "events_failed": 0,
    }


def test_state_round_trips_between_batches(driver: EntityDriver) -> None:
    driver.run(operation("configure", SPEC), operation("add_goal", {"description": "Ship v2"}))
    driver.run(operation("handle_event", event("e1")))
    driver.run(operation("update_state", {"key": "k", "value": [1, 2, {"x": None}]}))
    final = driver.run(operation("get")).result(0)
    assert final["state"] == {"k": [1, 2, {"x": None}]}
    assert final["goals"][0]["description"] == "Ship v2"
    assert final["counters"]["events_handled"] == 1
    AgentContext.model_validate(final)


def test_operations_on_an_unknown_agent_fail_and_reads_do_not_create_it(
    driver: EntityDriver,
) -> None:
    batch = driver.run(operation("get"), operation("handle_event", event("e1")))
    assert batch.result(0) is None
    assert "not registered" in batch.error(1)
    assert not batch.exists


def test_deregister_deletes_the_entity(driver: EntityDriver) -> None:
    driver.run(operation("configure", SPEC))
    batch = driver.run(operation("deregister"))
    assert not batch.exists
    assert batch.result(0) == {"agent_id": "agent-1", "deregistered": True}


def test_unknown_operation_and_missing_input_are_errors_not_crashes(driver: EntityDriver) -> None:
    driver.run(operation("configure", SPEC))
    batch = driver.run(
        operation("explode"),
        operation("handle_event"),  # "input": null
        operation("get"),
        operation("get", missing_input=True),  # the SDK itself needs the key
        operation("handle_event", event("e1")),
    )
    assert "no operation 'explode'" in batch.error(0)
    assert "type" in batch.error(1)  # no input: the event's required field is named
    assert batch.result(2)["spec"]["agent_id"] == "agent-1"
    assert batch.error(3) == "'input'"
    assert batch.result(4)["status"] == "applied"


def test_configure_without_purpose_cannot_create(driver: EntityDriver) -> None:
    batch = driver.run(operation("configure", {"kind": "generic"}))
    assert "purpose" in batch.error(0)
    assert not batch.exists


def test_patch_keeps_other_fields_and_put_replaces(driver: EntityDriver) -> None:
    driver.run(operation("configure", SPEC))
    patched = driver.run(operation("configure", {"purpose": "Delight customers"})).result(0)
    assert patched["purpose_scope"] == SPEC["purpose_scope"]
    replaced = driver.run(operation("configure", {"purpose": "Only this", "replace": True}))
    assert replaced.result(0)["purpose_scope"] == ""
    assert replaced.result(0)["success_criteria"] == []


def test_decide_picks_the_best_aligned_option_and_records_it_once(driver: EntityDriver) -> None:
    driver.run(operation("configure", SPEC))
    request = {
        "decision_id": "d1",
        "options": ["repaint the office bathroom", "improve customer satisfaction to grow revenue"],
    }
    batch = driver.run(operation("decide", request), operation("decide", request))
    first, second = batch.result(0), batch.result(1)
    assert first["chosen_index"] == 1
    assert second["chosen_index"] == 1
    assert first["scores"][1] > first["scores"][0]
    state = batch.state
    assert state["counters"]["decisions_made"] == 1
    assert [d["decision_id"] for d in state["recent_decisions"]] == ["d1"]


def test_remove_goal_and_delete_state(driver: EntityDriver) -> None:
    driver.run(
        operation("configure", SPEC),
        operation("add_goal", {"id": "g1", "description": "One"}),
        operation("update_state", {"key": "a", "value": 1}),
    )
    batch = driver.run(
        operation("remove_goal", {"id": "g1"}),
        operation("delete_state", {"key": "a"}),
        operation("delete_state", {"key": "a"}),
    )
    assert batch.result(0)["id"] == "g1"
    assert batch.result(1) == {"key": "a", "deleted": True}
    assert batch.result(2) == {"key": "a", "deleted": False}
    assert batch.state["goals"] == []
    assert batch.state["state"] == {}


def test_user_budget_is_enforced_without_changing_state(handle: Any) -> None:
    driver = EntityDriver(entity_handle(make_app(Limits(user_state_bytes=2048))))
    driver.run(operation("configure", SPEC))
    batch = driver.run(
        operation("update_state", {"key": "big", "value": "x" * 1500}),
        operation("update_state", {"key": "bigger", "value": "y" * 1500}),
    )
    assert not batch.results[0]["isError"]
    assert "limit is 2048" in batch.error(1)
    assert set(batch.state["state"]) == {"big"}


def test_leadership_agent_vets_proposed_goals(driver: EntityDriver) -> None:
    driver.run(
        operation(
            "configure",
            {"kind": "leadership", "purpose": "Strategic growth of the company revenue"},
        )
    )
    batch = driver.run(
        operation("handle_event", event("p1", "goal.proposed", description="Grow revenue in Asia")),
        operation("handle_event", event("p2", "goal.proposed", description="Buy a pinball table")),
    )
    assert batch.result(0)["result"]["goal"] == "accepted"
    assert batch.result(1)["result"]["goal"] == "declined"
    assert [g["description"] for g in batch.state["goals"]] == ["Grow revenue in Asia"]
    assert batch.state["counters"]["events_handled"] == 2


def test_state_after_100000_events_is_no_larger_than_after_1000(driver: EntityDriver) -> None:
    driver.run(operation("configure", SPEC))
    sizes = {}
    sent = 0
    for target in (1_000, 100_000):
        while sent < target:
            ops = [
                operation("handle_event", event(f"{i:032x}", "order.created", total=42))
                for i in range(sent, sent + 100)
            ]
            driver.run(*ops)
            sent += 100
        sizes[target] = len(driver.stored)
    state = json.loads(driver.stored)
    assert state["counters"]["events_handled"] == 100_000
    assert len(state["recent_events"]) == Limits().recent_events
    assert len(state["recent_id_digests"]) == 8 * Limits().processed_ids
    # Nothing grows but the event counter's digits (1,000 -> 100,000: two more).
    assert sizes[100_000] - sizes[1_000] <= len(str(100_000)) - len(str(1_000)), sizes


def test_a_state_the_app_cannot_read_fails_each_operation_clearly(driver: EntityDriver) -> None:
    driver.run(operation("configure", SPEC))
    corrupt = json.loads(driver.stored)
    corrupt["counters"] = "lots"
    driver.state_text = json.dumps(corrupt)
    batch = driver.run(operation("get"), operation("handle_event", event("e1")))
    assert "not a valid AgentContext" in batch.error(0)
    assert "not a valid AgentContext" in batch.error(1)
    assert json.loads(driver.stored)["counters"] == "lots"  # left for a human, not overwritten


def test_an_unregistered_kind_in_state_is_named(driver: EntityDriver) -> None:
    driver.run(operation("configure", SPEC))
    stored = json.loads(driver.stored)
    stored["spec"]["kind"] = "retired-kind"
    driver.state_text = json.dumps(stored)
    batch = driver.run(operation("handle_event", event("e1")))
    assert "Unknown agent kind 'retired-kind'" in batch.error(0)


def test_inputs_in_the_shapes_callers_naturally_send(driver: EntityDriver) -> None:
    batch = driver.run(
        operation("configure", {**SPEC, "agent_id": "agent-1"}),  # a whole spec, id included
        operation("add_goal", {"id": "g1", "description": "One"}),
        operation("update_goal", {"goal_id": "g1", "progress": 0.5}),
        operation("update_state", {"key": "k", "value": 1}),
        operation("delete_state", "k"),
        operation("remove_goal", "g1"),
        operation("configure", {"agent_id": "someone-else", "purpose": "x"}),
    )
    assert [r["isError"] for r in batch.results] == [False] * 6 + [True]
    assert batch.result(2)["progress"] == 0.5
    assert batch.result(4) == {"key": "k", "deleted": True}
    assert "is not this agent" in batch.error(6)
    assert batch.state["spec"]["purpose"] == SPEC["purpose"]
