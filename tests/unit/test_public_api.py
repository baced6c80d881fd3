"""Contract tests: the public names, and the functions the app registers with the host."""

from __future__ import annotations

import json

from entity_driver import make_app

import aos

EXPECTED_ALL = {
    "AOSError", "AgentContext", "AgentEntity", "AgentExistsError", "AgentKinds",
    "AgentNotFoundError", "AgentNotReadyError", "AgentManager", "AgentSpec", "AlignmentResult", "AlignmentScorer", "ConfigurationError",
    "ConflictError", "ContextDocument", "ContextServer", "Decision", "DecisionRequest",
    "ENTITY_NAME", "Event", "FieldError", "GenericPurposeDrivenAgent", "Goal", "GoalCreate",
    "GoalNotFoundError", "GoalStatus", "GoalUpdate", "InMemoryContextServer", "InvalidInputError",
    "LeadershipAgent", "LexicalAlignmentScorer", "LimitExceededError", "Limits", "NotFoundError",
    "OPERATIONS", "PayloadTooLargeError", "PerpetualAgent", "PurposeDrivenAgent", "PurposeProfile", "Settings",
    "SpecUpdate", "StorageError", "UnknownKindError", "UnknownOperationError",
    "UnsupportedMediaTypeError", "__version__", "create_app", "ContextMCPServer",
    "EntityContextServer", "HostManagedStateError", "HistoryArchive", "HistoryPage", "HistoryQuery",
    "HistoryRecord", "InMemoryHistoryArchive",
}  # fmt: skip


def test_public_api_is_pinned() -> None:
    assert set(aos.__all__) == EXPECTED_ALL
    for name in aos.__all__:
        assert getattr(aos, name) is not None


def test_entity_contract() -> None:
    assert aos.ENTITY_NAME == "agent"
    assert aos.OPERATIONS == (
        "configure", "handle_event", "add_goal", "update_goal", "remove_goal",
        "update_state", "delete_state", "decide", "get", "deregister",
    )  # fmt: skip


def test_the_app_registers_these_functions() -> None:
    """The function list with trigger types and routes, as the host indexes it."""
    functions = {f.get_function_name(): f for f in make_app().get_functions()}
    triggers = {}
    for name, function in functions.items():
        bindings = [json.loads(b) for b in function.get_raw_bindings()]
        (trigger,) = [b for b in bindings if b["type"].endswith("Trigger")]
        key = trigger.get("route") or trigger.get("queueName") or trigger.get("entityName")
        triggers[name] = (trigger["type"], key, tuple(trigger.get("methods", ())))
        if trigger["type"] == "httpTrigger":
            assert trigger["authLevel"] == "FUNCTION"
            assert {"type": "durableClient", "direction": "IN", "name": "client"} in bindings
    assert triggers == {
        "agent": ("entityTrigger", "agent", ()),
        "agents": ("httpTrigger", "agents", ("GET", "POST")),
        "agent_item": ("httpTrigger", "agents/{agent_id}", ("DELETE", "GET", "PATCH", "PUT")),
        "agent_goals": ("httpTrigger", "agents/{agent_id}/goals", ("GET", "POST")),
        "agent_goal": (
            "httpTrigger",
            "agents/{agent_id}/goals/{goal_id}",
            ("DELETE", "GET", "PATCH"),
        ),
        "agent_events": ("httpTrigger", "agents/{agent_id}/events", ("POST",)),
        "agent_history": ("httpTrigger", "agents/{agent_id}/history", ("GET",)),
        "agent_alignment": ("httpTrigger", "agents/{agent_id}/alignment", ("POST",)),
        "events": ("httpTrigger", "events", ("POST",)),
        "deadletters": ("httpTrigger", "deadletters", ("GET",)),
        "deadletter_item": ("httpTrigger", "deadletters/{letter_id}", ("GET",)),
        "deadletter_replay": ("httpTrigger", "deadletters/{letter_id}/replay", ("POST",)),
        "poison": ("httpTrigger", "poison", ("GET",)),
        "poison_item": ("httpTrigger", "poison/{letter_id}", ("GET",)),
        "poison_replay": ("httpTrigger", "poison/{letter_id}/replay", ("POST",)),
        "health": ("httpTrigger", "health", ("GET",)),
        "openapi": ("httpTrigger", "openapi.json", ("GET",)),
        "deliver_events": ("queueTrigger", "%AOS_EVENTS_QUEUE%", ()),
        "record_poison": ("queueTrigger", "%AOS_EVENTS_QUEUE%-poison", ()),
        "purge_history": ("timerTrigger", None, ()),
        "mcp": ("httpTrigger", "mcp", ("DELETE", "GET", "POST")),
    }
