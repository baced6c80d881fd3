"""Contract tests: the public names, and the functions the app registers with the host."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

from entity_driver import make_app

import aos
from aos.agents.entity import ENTITY_NAME, OPERATIONS

EXPECTED_ALL = {
    "AOSError", "AgentKinds", "AgentManager", "AgentSpec", "AlignmentResult", "AlignmentScorer",
    "ConflictError", "ContextMCPServer", "ContextStore", "Decision", "Event",
    "GenericPurposeDrivenAgent", "Goal", "InvalidInputError", "LeadershipAgent",
    "LimitExceededError", "Limits", "NotFoundError", "PerpetualAgent", "PurposeDrivenAgent",
    "StorageError", "ToolContext", "__version__", "create_app", "tool",
}  # fmt: skip


def test_public_api_is_pinned() -> None:
    assert set(aos.__all__) == EXPECTED_ALL
    for name in aos.__all__:
        assert getattr(aos, name) is not None


def test_the_signatures_users_rely_on() -> None:
    """The seed's vocabulary: constructors and the manager's calls, by parameter name."""

    def parameters(function: object) -> list[str]:
        return [p for p in inspect.signature(function).parameters if p != "self"]  # type: ignore[arg-type]

    assert parameters(aos.PerpetualAgent.__init__) == [
        "agent_id", "adapter_name", "purpose", "purpose_scope", "success_criteria",
        "subscriptions", "requires_approval", "limits", "context_server",
    ]  # fmt: skip
    assert parameters(aos.AgentManager.__init__) == [
        "kinds",
        "limits",
        "max_hops",
        "model",
        "approve",
        "turn_budget",
    ]
    assert parameters(aos.AgentManager.register_agent) == ["agent"]
    assert parameters(aos.AgentManager.get_agent) == ["agent_id"]
    assert parameters(aos.AgentManager.list_agents) == []
    assert parameters(aos.AgentManager.send_event) == ["agent_id", "event"]
    assert parameters(aos.create_app) == ["kinds", "runtime"]
    assert aos.ContextMCPServer is aos.ContextStore
    for method in (
        "initialize", "start", "stop", "handle_event", "update_state", "get_state", "save_state",
        "load_state", "cleanup",
    ):  # fmt: skip
        assert inspect.iscoroutinefunction(getattr(aos.PerpetualAgent, method)), method
    for method in (
        "evaluate_purpose_alignment", "make_purpose_driven_decision", "add_goal", "get_goals",
        "update_goal",
    ):  # fmt: skip
        assert inspect.iscoroutinefunction(getattr(aos.PurposeDrivenAgent, method)), method


def test_importing_aos_does_not_import_the_functions_sdks() -> None:
    code = "import sys, aos; print(sorted(m for m in sys.modules if m.startswith('azure')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_entity_contract() -> None:
    assert ENTITY_NAME == "agent"
    assert OPERATIONS == (
        "configure", "handle_event", "add_goal", "update_goal", "remove_goal",
        "update_state", "delete_state", "decide", "get", "deregister",
        "set_reminder", "cancel_reminder", "fire_reminder",
        "begin_turn", "apply_turn_step", "end_turn", "handle_events",
    )  # fmt: skip


def test_the_app_registers_these_functions() -> None:
    """The function list with trigger types and routes, as the host indexes it."""
    functions = {f.get_function_name(): f for f in make_app().get_functions()}
    outbox = {
        "type": "queue",
        "direction": "OUT",
        "name": "outbox",
        "queueName": "%AOS_EVENTS_QUEUE%",
        "connection": "AzureWebJobsStorage",
    }
    triggers = {}
    for name, function in functions.items():
        bindings = [json.loads(b) for b in function.get_raw_bindings()]
        (trigger,) = [b for b in bindings if b["type"].endswith("Trigger")]
        key = trigger.get("route") or trigger.get("queueName") or trigger.get("entityName")
        triggers[name] = (trigger["type"], key, tuple(trigger.get("methods", ())))
        if trigger["type"] == "httpTrigger":
            assert trigger["authLevel"] == "FUNCTION"
            assert {"type": "durableClient", "direction": "IN", "name": "client"} in bindings
            assert outbox in bindings  # the events a request sends (aos.adapters.outbox)
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
        "agent_purge": ("httpTrigger", "agents/{agent_id}/purge", ("GET",)),
        "agent_reminders": ("httpTrigger", "agents/{agent_id}/reminders", ("GET",)),
        "agent_reminder": (
            "httpTrigger",
            "agents/{agent_id}/reminders/{reminder_id}",
            ("DELETE", "PUT"),
        ),
        "agent_alignment": ("httpTrigger", "agents/{agent_id}/alignment", ("POST",)),
        "agent_messages": ("httpTrigger", "agents/{agent_id}/messages", ("POST",)),
        "agent_turn": ("httpTrigger", "agents/{agent_id}/turns/{turn_id}", ("GET",)),
        "agent_turn_approval": (
            "httpTrigger",
            "agents/{agent_id}/turns/{turn_id}/approval",
            ("POST",),
        ),
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
        "run_maintenance": ("queueTrigger", "%AOS_EVENTS_QUEUE%-maintenance", ()),
        "mcp": ("httpTrigger", "mcp", ("DELETE", "GET", "POST")),
        "aos_reminder": ("orchestrationTrigger", None, ()),
        "aos_turn": ("orchestrationTrigger", None, ()),
        "aos_model_step": ("activityTrigger", None, ()),
        "aos_tool": ("activityTrigger", None, ()),
    }


def test_a_cold_start_loads_only_what_indexing_the_app_needs() -> None:
    """What the first request (or the first use) loads instead: the HTTP handlers and the MCP
    server, the model clients, the stemmer of the alignment scorer (``bench/import_time.py``)."""
    later = ["aos.api.http", "aos.api.mcp", "mcp", "openai", "azure.identity", "snowballstemmer"]
    code = f"import sys, function_app; print([m for m in {later!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
