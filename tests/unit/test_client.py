"""aos.client and aos.cli without a service: what they import, the public names, the problem+json
to exception table, retries, and the exit codes. (Against the real local host: tests/e2e.)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from typer.testing import CliRunner

import aos.client
from aos.cli import app, exit_code
from aos.client import (
    AosClient,
    AsyncAosClient,
    ConflictError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    PayloadTooLargeError,
    Retry,
    ServiceError,
    StorageError,
    UnsupportedMediaTypeError,
)
from aos.errors import AOSError

HEALTH = {"status": "ok", "storage": {"queues": "ok"}, "version": "1"}


def problem(slug: str, status: int, **extra: object) -> httpx.Response:
    body = {"type": f"urn:aos:problem:{slug}", "title": slug, "status": status, "detail": slug}
    return httpx.Response(
        status, json={**body, **extra}, headers={"content-type": "application/problem+json"}
    )


def client(
    handler: Callable[[httpx.Request], httpx.Response], retry: Retry | None = None
) -> AosClient:
    transport = httpx.MockTransport(handler)
    return AosClient("http://aos.test", transport=transport, function_key="k", retry=retry)


def test_importing_the_client_and_cli_imports_no_azure_sdk() -> None:
    code = (
        "import sys, aos.client, aos.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'azure'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(done.stdout.replace("'", '"'))
    assert "azure.functions" not in loaded
    assert "azure.durable_functions" not in loaded
    assert loaded == []  # nor the storage SDKs


def test_public_names_are_pinned() -> None:
    assert set(aos.client.__all__) == {
        "PROBLEM_TYPES", "AOSError", "AgentDetail", "AgentPatch", "AgentResource",
        "AlignmentResponse", "AosClient", "AsyncAosClient", "BroadcastAccepted", "ConflictError",
        "DeadLetterItem", "DeadLetterReplayed", "EventAccepted", "EventIn", "FieldError", "Goal",
        "GoalChanges", "GoalCreate", "Health", "HistoryItem", "InvalidInputError",
        "LimitExceededError", "NotFoundError", "PayloadTooLargeError", "RegisterAgent",
        "ReplaceAgent", "Retry", "ServiceError", "StorageError", "UnsupportedMediaTypeError",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("slug", "status", "expected"),
    [
        ("invalid-request", 400, InvalidInputError),
        ("payload-too-large", 413, PayloadTooLargeError),
        ("unsupported-media-type", 415, UnsupportedMediaTypeError),
        ("not-found", 404, NotFoundError),
        ("conflict", 409, ConflictError),
        ("limit-exceeded", 422, LimitExceededError),
        ("storage-unavailable", 503, StorageError),
        ("method-not-allowed", 405, ServiceError),
        ("internal", 500, ServiceError),
    ],
)
def test_problem_types_raise_the_matching_error(
    slug: str, status: int, expected: type[AOSError]
) -> None:
    with (
        client(lambda r: problem(slug, status), retry=Retry(attempts=1)) as aos,
        pytest.raises(expected) as caught,
    ):
        aos.get_agent("cfo")
    assert type(caught.value) is expected
    assert caught.value.status == status
    assert caught.value.problem is not None
    assert caught.value.problem["type"] == f"urn:aos:problem:{slug}"


def test_invalid_input_carries_the_field_errors() -> None:
    errors = [
        {"loc": ["body", "purpose"], "pointer": "/body/purpose", "msg": "too short", "type": "t"}
    ]
    with (
        client(lambda r: problem("invalid-request", 400, errors=errors)) as aos,
        pytest.raises(InvalidInputError) as caught,
    ):
        aos.get_agent("cfo")
    (field,) = caught.value.errors
    assert (field.loc, field.message, field.pointer) == (
        ("body", "purpose"),
        "too short",
        "/body/purpose",
    )


def test_answers_without_a_problem_body_map_by_status() -> None:
    with (
        client(lambda r: httpx.Response(404, text="no route")) as aos,
        pytest.raises(NotFoundError),
    ):
        aos.get_agent("cfo")
    with client(lambda r: httpx.Response(401)) as aos, pytest.raises(ServiceError) as caught:
        aos.get_agent("cfo")
    assert caught.value.status == 401
    assert "function key" in str(caught.value)
    assert exit_code(caught.value) == 8


def test_bodies_are_checked_before_sending() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    with client(handler) as aos, pytest.raises(InvalidInputError) as caught:
        aos.register_agent({"agent_id": "cfo", "purpose": "", "colour": "red"})
    assert {e.loc for e in caught.value.errors} == {("body", "purpose"), ("body", "colour")}
    assert caught.value.status is None
    assert sent == []


def test_429_and_503_are_retried_honouring_retry_after() -> None:
    answers = [
        httpx.Response(429, headers={"retry-after": "0"}),
        problem("storage-unavailable", 503),
        httpx.Response(200, json={"type": "t", "event_id": "e", "subscribers": 0}),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    with client(handler, retry=Retry(backoff=0.0)) as aos:
        accepted = aos.publish_event({"type": "market.update"}, correlation_id="c-1")
    assert accepted.subscribers == 0
    assert len(seen) == 3
    assert all(r.headers["x-functions-key"] == "k" for r in seen)
    assert seen[-1].headers["x-correlation-id"] == "c-1"
    # every try carries the same event id, made by the client: a retry is the same event
    assert len({json.loads(r.content)["event_id"] for r in seen}) == 1


def test_retries_stop_after_the_last_attempt() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return problem("storage-unavailable", 503)

    with client(handler, retry=Retry(attempts=3, backoff=0.0)) as aos:
        with pytest.raises(StorageError):
            aos.get_agent("cfo")
        assert len(seen) == 3
    # a degraded health answer is 503 with the Health body: an answer, never retried
    with client(lambda r: httpx.Response(503, json={**HEALTH, "status": "degraded"})) as aos:
        assert aos.health().status == "degraded"


def test_retry_after_as_an_http_date_and_the_cap() -> None:
    retry = Retry(max_delay=2.0)
    call = aos.client._calls.health()
    far = httpx.Response(429, headers={"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"})
    assert retry.delay(aos.client._calls.get_agent("a"), far, 1) == 2.0
    assert retry.delay(call, far, 1) is None  # health is never retried
    assert retry.delay(aos.client._calls.get_agent("a"), httpx.Response(429), 4) is None


def test_the_async_client_maps_errors_the_same_way() -> None:
    import asyncio

    async def run() -> None:
        transport = httpx.MockTransport(lambda r: problem("conflict", 409))
        async with AsyncAosClient("http://aos.test/api/", transport=transport) as aos:
            assert aos.base_url == "http://aos.test"
            with pytest.raises(ConflictError):
                await aos.register_agent({"agent_id": "cfo", "purpose": "p"})

    asyncio.run(run())


def test_urls_and_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOS_URL", "https://app.example/")
    monkeypatch.setenv("AOS_FUNCTION_KEY", "secret")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=HEALTH)

    with AosClient(transport=httpx.MockTransport(handler)) as aos:
        aos.health()
    assert str(seen[0].url) == "https://app.example/api/health"
    assert seen[0].headers["x-functions-key"] == "secret"


@pytest.mark.parametrize(
    "args",
    [
        [], ["agents"], ["goals"], ["events"], ["deadletters"],
        ["agents", "register"], ["history"], ["events", "send"], ["deadletters", "replay"],
    ],
)  # fmt: skip
def test_every_command_explains_itself(args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: aos" in result.output
    if not args:
        assert "Exit codes" in result.output
