"""Fuzz the whole HTTP API from its own OpenAPI document: no input may get a 5xx (issue 10).

The AOS app runs as a real `python -m devhost` process over Azurite; schemathesis loads
`/api/openapi.json` and runs its example, coverage (boundary and negative values, unsupported
methods) and fuzzing phases over every operation, with a bounded number of examples and fixed
seeds, so a run is reproducible. One seed fixes the path ids to an agent and a goal that exist, so
that generated calls reach the handlers' success paths too, not only their 404s. Any failed check
fails the test, listing each finding with the request that reproduces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from aos_e2e_support import aos_host
from process_host import HostProcess
from schemathesis import engine
from schemathesis.cli.commands.run.warnings import positive_call_outcomes
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "unsupported_method",
]
MAX_EXAMPLES = 10
"""Per operation, phase and seed: together with the coverage phase's own cases, a run stays
bounded (about 1,500 requests over three seeds)."""
AGENT = {"agent_id": "ceo", "purpose": "Grow the company through delighted customers"}
GOAL = {"id": "g1", "description": "Ship the product"}


@dataclass
class Run:
    operations: set[str] = field(default_factory=set)
    cases: int = 0
    findings: list[str] = field(default_factory=list)
    accepted: dict[str, list[int]] = field(default_factory=dict)
    """Per operation: positive cases the API accepted (2xx), and all positive cases answered."""


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, azurite: Any) -> Iterator[HostProcess]:
    from devhost.storage_names import UniqueName

    names = UniqueName()
    env = {
        "AzureWebJobsStorage": azurite.connection_string,
        "AOS_TASK_HUB": names.table_name("Hub"),
        "AOS_EVENTS_QUEUE": names.queue_name("events"),
        "AOS_DEADLETTER_QUEUE": names.queue_name("dead"),
        "AOS_AGENTS_TABLE": names.table_name("Agents"),
        "AOS_HISTORY_TABLE": names.table_name("History"),
        "PYTHONUNBUFFERED": "1",
    }
    with aos_host(env, tmp_path_factory.mktemp("fuzz") / "devhost.log") as process:
        yield process


def fuzz(base_url: str, seed: int, fixed_ids: bool = False) -> Run:
    """One schemathesis run over every operation; what it found, not raised. With ``fixed_ids``
    the path ids are the agent and goal of ``seed_resources`` and DELETEs are left out, so that
    every call addresses resources that exist."""
    seed_resources(base_url)
    config = SchemathesisConfig()
    config.update(seed=seed, max_failures=None)
    project = config.projects.override
    parameters = {"agent_id": AGENT["agent_id"], "goal_id": GOAL["id"]} if fixed_ids else None
    project.update(base_url=f"{base_url}/api", request_timeout=30, parameters=parameters)
    project.phases.update(phases=["examples", "coverage", "fuzzing"])
    project.checks.update(included_check_names=CHECKS)
    project.generation.update(max_examples=MAX_EXAMPLES, no_shrink=True, database="none")
    loaded = schemathesis.openapi.from_url(f"{base_url}/api/openapi.json", config=config)
    schema = loaded.exclude(method="DELETE") if fixed_ids else loaded
    run = Run()
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.FatalError):
            run.findings.append(f"fatal: {event.exception!r}")
        if not isinstance(event, events.ScenarioFinished) or event.status is Status.SKIP:
            continue
        label = event.label or "?"
        run.operations.add(label)
        recorder = event.recorder
        run.cases += len(recorder.cases)
        outcomes = positive_call_outcomes(recorder)
        counts = run.accepted.setdefault(label, [0, 0])
        counts[0] += outcomes.accepted
        counts[1] += outcomes.total
        for checks in recorder.checks.values():
            for check in checks:
                if check.status is not Status.FAILURE or check.failure_info is None:
                    continue
                failure = check.failure_info.failure
                run.findings.append(
                    f"{label} [{check.name}] {failure.title}: {failure.message}\n"
                    f"{check.failure_info.code_sample}"
                )
    return run


def seed_resources(base_url: str) -> None:
    """The agent and goal that ``fixed_ids`` runs address (again: a run may have deleted them)."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        agent = client.put(f"/api/agents/{AGENT['agent_id']}", json=AGENT)
        assert agent.status_code in (200, 201), agent.text
        goal = client.post(f"/api/agents/{AGENT['agent_id']}/goals", json=GOAL)
        assert goal.status_code == 201, goal.text


def test_no_generated_request_gets_a_server_error(host: HostProcess) -> None:
    documented = httpx.get(f"{host.base_url}/api/openapi.json").json()
    # The loader fetches the document itself; schemathesis does not run the operation again.
    operations = {
        f"{method.upper()} {path}"
        for path, item in documented["paths"].items()
        for method in item
        if path != "/openapi.json"
    }

    runs = [
        fuzz(host.base_url, seed=1),
        fuzz(host.base_url, seed=2),
        fuzz(host.base_url, seed=3, fixed_ids=True),
    ]

    findings = [finding for run in runs for finding in run.findings]
    assert not findings, f"{len(findings)} findings:\n\n" + "\n\n".join(dict.fromkeys(findings))
    for run in runs[:2]:
        assert run.operations == operations
        assert run.cases >= len(operations) * MAX_EXAMPLES
    fixed = runs[2]
    assert fixed.operations == {op for op in operations if not op.startswith("DELETE ")}
    # The document is exact enough that generated data reaches every handler's success path. A
    # letter id addresses a message set aside, which exists only until it is replayed: those
    # success paths are tested with real letters in tests/integration/test_deadletters.py. An
    # approval needs a turn that waits for one: tests/e2e/test_e2e_thinking.py approves real ones.
    never_accepted = {
        op: counts
        for op, counts in fixed.accepted.items()
        if counts[0] == 0 and "{letter_id}" not in op and not op.endswith("/approval")
    }
    assert not never_accepted, never_accepted
