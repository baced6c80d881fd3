"""Contract tests: the public names, and the functions the app registers with the host."""

from __future__ import annotations

import json

from entity_driver import make_app

import aos

EXPECTED_ALL = {
    "AOSError", "AgentContext", "AgentEntity", "AgentExistsError", "AgentKinds",
    "AgentNotFoundError", "AgentSpec", "AlignmentResult", "AlignmentScorer", "ConfigurationError",
    "ConflictError", "ContextDocument", "ContextServer", "Decision", "DecisionRequest",
    "ENTITY_NAME", "Event", "FieldError", "GenericPurposeDrivenAgent", "Goal", "GoalCreate",
    "GoalNotFoundError", "GoalStatus", "GoalUpdate", "InMemoryContextServer", "InvalidInputError",
    "LeadershipAgent", "LexicalAlignmentScorer", "LimitExceededError", "Limits", "NotFoundError",
    "OPERATIONS", "PerpetualAgent", "PurposeDrivenAgent", "PurposeProfile", "Settings",
    "SpecUpdate", "StorageError", "UnknownKindError", "UnknownOperationError", "create_app",
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


def test_the_app_registers_the_agent_entity() -> None:
    functions = {f.get_function_name(): f for f in make_app().get_functions()}
    bindings = [json.loads(b) for b in functions["agent"].get_raw_bindings()]
    assert bindings == [
        {"direction": "IN", "type": "entityTrigger", "name": "context", "entityName": "agent"}
    ]
