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
    BusyError,
    ConflictError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    PayloadTooLargeError,
    Retry,
    ServiceError,
    StorageError,
    TurnTimeoutError,
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
        "AlignmentResponse", "AosClient", "AsyncAosClient", "BroadcastAccepted", "BusyError",
        "ConflictError", "DeadLetterItem", "DeadLetterReplayed", "EventAccepted", "EventIn",
        "FieldError", "Goal", "GoalChanges", "GoalCreate", "Health", "HistoryItem",
        "InvalidInputError", "LimitExceededError", "MessageAccepted", "NotFoundError",
        "PayloadTooLargeError", "PendingToolCall", "PurgeJob", "RegisterAgent", "ReplaceAgent", "Retry",
        "ServiceError", "StorageError", "ToolCallView", "TurnResource", "TurnTimeoutError",
        "UnsupportedMediaTypeError",
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
        ("busy", 429, BusyError),
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
        [], ["agents"], ["goals"], ["events"], ["deadletters"], ["turns"], ["reminders"],
        ["agents", "register"], ["history"], ["events", "send"], ["deadletters", "replay"],
        ["agents", "ask"], ["turns", "show"], ["turns", "approve"], ["reminders", "set"],
    ],
)  # fmt: skip
def test_every_command_explains_itself(args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: aos" in result.output
    if not args:
        assert "Exit codes" in result.output


# ------------------------------------------------------------------------------ messages and turns
TURN_ID = "turn-" + "0" * 32


def turn(status: str, **fields: object) -> dict[str, object]:
    return {"turn_id": TURN_ID, "agent_id": "cfo", "status": status, **fields}


WAITING = turn(
    "waiting_approval",
    waiting_for={"id": "call-1", "name": "pay_invoice", "arguments": '{"amount": 10}'},
)
ACCEPTED = {
    "message_id": "m-1",
    "turn_id": TURN_ID,
    "agent_id": "cfo",
    "status": "queued",
    "status_url": f"http://aos.test/api/agents/cfo/turns/{TURN_ID}",
}


class FakeTurns:
    """A service with one turn: 404 for its first ``unknown`` GETs, then each of ``statuses``
    (the last one repeated); an approval moves a waiting turn on to ``approved``."""

    def __init__(self, statuses: list[dict[str, object]], unknown: int = 0) -> None:
        self.statuses = statuses
        self.unknown = unknown
        self.requests: list[httpx.Request] = []
        self.gets = 0
        self.approved: dict[str, object] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST" and path == "/api/agents/cfo/messages":
            body = json.loads(request.content)
            return httpx.Response(202, json={**ACCEPTED, "message_id": body["message_id"]})
        if request.method == "GET" and path == f"/api/agents/cfo/turns/{TURN_ID}":
            self.gets += 1
            if self.gets <= self.unknown:
                return problem("not-found", 404)
            return httpx.Response(
                200, json=self.statuses[min(self.gets - self.unknown, len(self.statuses)) - 1]
            )
        if request.method == "POST" and path == f"/api/agents/cfo/turns/{TURN_ID}/approval":
            current = self.statuses[-1]
            if current["status"] != "waiting_approval":
                return problem("conflict", 409)
            self.approved = json.loads(request.content)
            self.statuses.append(turn("running"))
            self.statuses.append(turn("completed", reply="paid"))
            return httpx.Response(202, json=turn("running"))
        return httpx.Response(500)


def test_ask_sends_then_polls_past_the_first_404s_until_the_turn_settles() -> None:
    fake = FakeTurns([turn("queued"), turn("running"), turn("completed", reply="fine")], unknown=2)
    with client(fake) as aos:
        answer = aos.ask("cfo", "How is cash flow?", poll=0.0)
    assert (answer.status, answer.reply) == ("completed", "fine")
    sent = json.loads(fake.requests[0].content)
    assert sent["content"] == "How is cash flow?"
    assert sent["message_id"]  # made by the client: a retried POST is the same message
    assert fake.gets == 5


def test_a_given_message_id_is_sent_and_bad_content_is_refused_before_sending() -> None:
    fake = FakeTurns([turn("completed", reply="ok")])
    with client(fake) as aos:
        accepted = aos.send_message("cfo", "hello", message_id="m-42")
        assert accepted.message_id == "m-42"
        assert json.loads(fake.requests[0].content) == {"content": "hello", "message_id": "m-42"}
        with pytest.raises(InvalidInputError) as caught:
            aos.send_message("cfo", "x" * 16_001)
        assert caught.value.errors[0].loc == ("body", "content")
    assert len(fake.requests) == 1


def test_ask_stops_at_an_approval_and_approve_turn_lets_it_go_on() -> None:
    fake = FakeTurns([turn("running"), WAITING])
    with client(fake) as aos:
        waiting = aos.ask("cfo", "pay the invoice", poll=0.0)
        assert waiting.status == "waiting_approval"
        assert waiting.waiting_for is not None
        assert waiting.waiting_for.name == "pay_invoice"
        running = aos.approve_turn("cfo", TURN_ID, True, "within budget")
        assert running.status == "running"
        assert fake.approved == {"approve": True, "reason": "within budget"}
        done = aos.wait_for_turn("cfo", TURN_ID, poll=0.0)
        assert (done.status, done.reply) == ("completed", "paid")
        with pytest.raises(ConflictError):  # it waits for nothing now
            aos.approve_turn("cfo", TURN_ID, False)


def test_a_failed_turn_is_returned_not_raised() -> None:
    fake = FakeTurns([turn("failed", error="budget exceeded: 8 steps")])
    with client(fake) as aos:
        failed = aos.ask("cfo", "loop forever", poll=0.0)
    assert (failed.status, failed.error) == ("failed", "budget exceeded: 8 steps")


def test_ask_times_out_with_the_last_status_seen() -> None:
    fake = FakeTurns([turn("running")])
    with client(fake) as aos, pytest.raises(TurnTimeoutError) as caught:
        aos.ask("cfo", "think long", timeout=0.2, poll=0.05)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.turn is not None
    assert caught.value.turn.status == "running"
    assert "still running" in str(caught.value)
    assert exit_code(caught.value) == 10


def test_a_turn_unknown_after_the_grace_is_not_found() -> None:
    fake = FakeTurns([turn("running")], unknown=10_000)
    with client(fake) as c, pytest.raises(TurnTimeoutError) as caught:
        c.wait_for_turn("cfo", TURN_ID, timeout=0.1, poll=0.02)  # within the grace: not yet
    assert caught.value.turn is None
    assert "not yet known" in str(caught.value)
    wait = aos.client._calls.TurnWait("cfo", TURN_ID, timeout=60, started=0.0, grace=5.0)
    missing = NotFoundError("no such turn")
    wait.unknown(missing, now=4.9)  # not yet
    with pytest.raises(NotFoundError):
        wait.unknown(missing, now=5.0)
    assert not wait.seen(aos.client.TurnResource.model_validate(turn("running")))
    with pytest.raises(NotFoundError):  # once seen, a 404 is not "not yet"
        wait.unknown(missing, now=0.1)
    with pytest.raises(TurnTimeoutError):
        wait.pause(now=60.0, poll=1.0)
    assert wait.pause(now=59.5, poll=1.0) == 0.5


def test_a_busy_agent_raises_busy_error_after_the_retries() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return problem("busy", 429)

    with client(handler, retry=Retry(attempts=2, backoff=0.0)) as aos, pytest.raises(BusyError):
        aos.send_message("cfo", "hello")
    assert len(seen) == 2
    assert len({json.loads(r.content)["message_id"] for r in seen}) == 1
    assert exit_code(BusyError("busy")) == 9


def test_the_async_client_asks_and_approves() -> None:
    import asyncio

    async def run() -> None:
        fake = FakeTurns([turn("queued"), WAITING], unknown=1)
        async with AsyncAosClient("http://aos.test", transport=httpx.MockTransport(fake)) as aos:
            waiting = await aos.ask("cfo", "pay the invoice", poll=0.0)
            assert waiting.status == "waiting_approval"
            await aos.approve_turn("cfo", TURN_ID, False, "not now")
            assert fake.approved == {"approve": False, "reason": "not now"}
            assert (await aos.get_turn("cfo", TURN_ID)).status == "running"
        slow = httpx.MockTransport(FakeTurns([turn("running")]))
        async with AsyncAosClient("http://aos.test", transport=slow) as aos:
            with pytest.raises(TurnTimeoutError):
                await aos.wait_for_turn("cfo", TURN_ID, timeout=0.05, poll=0.01)

    asyncio.run(run())


def cli_with(monkeypatch: pytest.MonkeyPatch, fake: FakeTurns) -> CliRunner:
    """The command line over ``fake`` instead of a service."""
    import aos.cli._commands as commands

    def fake_client(url: str | None, *, function_key: str | None = None) -> AosClient:
        return AosClient("http://aos.test", transport=httpx.MockTransport(fake))

    monkeypatch.setattr(commands, "AosClient", fake_client)
    return CliRunner()


def test_cli_ask_prints_the_reply_or_the_pending_call_or_fails_with_10(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = cli_with(monkeypatch, FakeTurns([turn("completed", reply="All calm.")]))
    done = runner.invoke(app, ["-o", "table", "agents", "ask", "cfo", "hello"])
    assert (done.exit_code, done.output.strip()) == (0, "All calm.")

    runner = cli_with(monkeypatch, FakeTurns([WAITING]))
    done = runner.invoke(app, ["-o", "table", "agents", "ask", "cfo", "pay it"])
    assert done.exit_code == 0, done.output
    assert "pay_invoice" in done.output
    assert f"aos turns approve cfo {TURN_ID}" in done.output
    assert "--refuse" in done.output

    runner = cli_with(monkeypatch, FakeTurns([turn("failed", error="no budget left")]))
    done = runner.invoke(app, ["-o", "json", "agents", "ask", "cfo", "spend"])
    assert done.exit_code == 10
    assert json.loads(done.stdout)["status"] == "failed"
    assert "failed: no budget left" in done.stderr


def test_cli_turns_show_and_approve(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTurns([WAITING])
    runner = cli_with(monkeypatch, fake)
    shown = runner.invoke(app, ["-o", "json", "turns", "show", "cfo", TURN_ID])
    assert json.loads(shown.stdout)["waiting_for"]["name"] == "pay_invoice"
    table = runner.invoke(app, ["-o", "table", "turns", "show", "cfo", TURN_ID])
    assert "pay_invoice" in table.stdout
    refused = runner.invoke(
        app, ["-o", "json", "turns", "approve", "cfo", TURN_ID, "--refuse", "--reason", "no"]
    )
    assert refused.exit_code == 0, refused.output
    assert fake.approved == {"approve": False, "reason": "no"}
    again = runner.invoke(app, ["-o", "json", "turns", "approve", "cfo", TURN_ID])
    assert isinstance(again.exception, ConflictError)  # `aos` (main) exits 5 with it
    assert exit_code(again.exception) == 5
