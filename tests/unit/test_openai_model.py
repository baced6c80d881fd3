"""``OpenAIChatModel``: the real ``openai`` client against the scripted server on loopback.

What is checked is what a turn relies on: replies and tool calls come back as the model wrote them,
the SDK waits as ``retry-after`` asks and retries 5xx and timeouts, errors become ``ModelError``
with the right ``retryable``, and each API sends the right path, query and credentials.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from scripted_openai import Recorded, Scripted, ScriptedOpenAI, last_user_message

from aos.adapters.models import COGNITIVE_SERVICES_SCOPE, OpenAIChatModel, chat_model_for
from aos.ports.models import ModelError, ToolSpec
from aos.settings import ModelProfile

pytestmark = pytest.mark.asyncio

KEY = "test-key-0123456789"
ASK = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What time is it?"},
]
CLOCK = ToolSpec("get_time", "The current time", {"type": "object", "properties": {}})


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTTP client honours proxy variables: loopback must not go through one."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def server() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI(key=lambda r: last_user_message(r.body)) as scripted:
        yield scripted


def profile(server: ScriptedOpenAI, **changes: Any) -> ModelProfile:
    base = ModelProfile(
        name="test",
        api="azure_openai",
        endpoint=server.url,
        deployment="gpt-test",
        api_key=KEY,
        timeout_seconds=5.0,
        max_retries=2,
    )
    return dataclasses.replace(base, **changes)


async def complete(model_profile: ModelProfile, tools: tuple[ToolSpec, ...] = ()) -> Any:
    async with OpenAIChatModel(model_profile) as model:
        return await model.complete(ASK, tools)


async def test_a_text_reply_through_the_azure_path_with_a_key(server: ScriptedOpenAI) -> None:
    server.add(Scripted.text("It is noon.", prompt_tokens=12, completion_tokens=4))
    reply = await complete(profile(server))
    assert (reply.content, reply.tool_calls, reply.offline) == ("It is noon.", (), False)
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12, 4)
    assert reply.model == "gpt-test"
    assert reply.latency_ms > 0
    [request] = server.requests
    assert request.path == "/openai/deployments/gpt-test/chat/completions"
    assert request.deployment == "gpt-test"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers
    assert request.body["messages"] == ASK
    assert "tools" not in request.body  # no tools: none sent, not an empty list
    assert server.count("What time is it?") == 1


async def test_tool_calls_keep_their_arguments_verbatim(server: ScriptedOpenAI) -> None:
    server.add(
        Scripted.tools(("get_time", '{"zone": "UTC"}'), ("get_time", '{"zone": "CET"'), model="m1")
    )
    reply = await complete(profile(server), (CLOCK,))
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [
        ("get_time", '{"zone": "UTC"}'),
        ("get_time", '{"zone": "CET"'),  # malformed JSON, kept as written
    ]
    assert reply.tool_calls[0].id != reply.tool_calls[1].id
    assert reply.content is None
    assert reply.model == "m1"  # the answer's model, when it names one
    assert server.requests[0].body["tools"] == [CLOCK.to_openai()]


async def test_429_waits_for_retry_after_then_succeeds(server: ScriptedOpenAI) -> None:
    server.add(
        Scripted.error(429, "Rate limit reached", headers={"retry-after": "1"}),
        Scripted.text("ok"),
    )
    reply = await complete(profile(server))
    assert reply.content == "ok"
    first, second = server.requests
    assert second.time - first.time >= 0.95  # the SDK waited as asked (its backoff is 0.5 s)
    assert second.headers["x-stainless-retry-count"] == "1"


async def test_500_is_retried_then_succeeds(server: ScriptedOpenAI) -> None:
    server.add(Scripted.error(500), Scripted.text("ok"))
    assert (await complete(profile(server))).content == "ok"
    assert server.count() == 2


async def test_500_every_time_is_a_retryable_error_after_every_attempt(
    server: ScriptedOpenAI,
) -> None:
    server.default = Scripted.error(503, "The service is busy", headers={"retry-after-ms": "10"})
    with pytest.raises(ModelError) as caught:
        await complete(profile(server, max_retries=2))
    assert (caught.value.retryable, caught.value.status) == (True, 503)
    assert "The service is busy" in str(caught.value)
    assert server.count() == 3  # 1 + max_retries


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(server: ScriptedOpenAI, status: int) -> None:
    server.default = Scripted.error(status, f"bad request {KEY}")  # a body quoting the key
    with pytest.raises(ModelError) as caught:
        await complete(profile(server))
    assert (caught.value.retryable, caught.value.status) == (False, status)
    assert "bad request" in str(caught.value)
    assert KEY not in str(caught.value)
    assert server.count() == 1


async def test_a_retry_after_beyond_two_minutes_is_not_waited_for(server: ScriptedOpenAI) -> None:
    server.default = Scripted.error(429, headers={"retry-after": "300"})
    started = time.monotonic()
    with pytest.raises(ModelError) as caught:
        await complete(profile(server))
    assert time.monotonic() - started < 2
    assert (caught.value.retryable, caught.value.status) == (True, 429)
    assert "retry-after 300" in str(caught.value)
    assert server.count() == 1


async def test_a_slow_reply_times_out_and_the_retry_succeeds(server: ScriptedOpenAI) -> None:
    server.add(Scripted.text("late", delay=2.0), Scripted.text("quick"))
    reply = await complete(profile(server, timeout_seconds=0.5, max_retries=1))
    assert reply.content == "quick"
    assert server.count() == 2


async def test_slow_every_time_is_a_retryable_timeout(server: ScriptedOpenAI) -> None:
    server.default = Scripted.text("late", delay=2.0)
    with pytest.raises(ModelError) as caught:
        await complete(profile(server, timeout_seconds=0.5, max_retries=1))
    assert (caught.value.retryable, caught.value.status) == (True, None)
    assert "no answer within 0.5 s" in str(caught.value)
    assert server.count() == 2


async def test_nothing_listening_is_a_retryable_connection_error() -> None:
    with ScriptedOpenAI() as gone:
        closed = profile(gone, max_retries=0)
    with pytest.raises(ModelError) as caught:
        await complete(closed)
    assert caught.value.retryable


class FakeCredential:
    """An async Entra credential that hands out a known token and counts its calls."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("entra-token-xyz", int(time.time()) + 3600)

    async def close(self) -> None:
        return

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return


async def test_entra_id_sends_the_credentials_bearer_token(server: ScriptedOpenAI) -> None:
    server.add(Scripted.text("one"), Scripted.text("two"))
    credential = FakeCredential()
    no_key = profile(server, api_key=None, api_version="2025-04-01-preview")
    async with OpenAIChatModel(no_key, credential=credential) as model:
        assert (await model.complete(ASK, ())).content == "one"
        assert (await model.complete(ASK, ())).content == "two"
    for request in server.requests:
        assert request.headers["authorization"] == "Bearer entra-token-xyz"
        assert "api-key" not in request.headers
        assert request.query == {"api-version": "2025-04-01-preview"}
    assert credential.scopes == [(COGNITIVE_SERVICES_SCOPE,)]  # cached for the second call


async def test_the_openai_api_uses_the_base_url_and_the_model_name(server: ScriptedOpenAI) -> None:
    server.add(Scripted.text("hi"), Scripted.text("hi again"))
    local = profile(server, api="openai", endpoint=server.base_url, deployment="llama3")
    model = chat_model_for(local)
    try:
        assert (await model.complete(ASK, ())).content == "hi"
    finally:
        await model.close()
    assert (await complete(dataclasses.replace(local, api_key=None))).content == "hi again"
    with_key, without_key = server.requests
    assert with_key.path == "/v1/chat/completions"
    assert with_key.query == {}
    assert with_key.body["model"] == "llama3"
    assert with_key.headers["authorization"] == f"Bearer {KEY}"
    assert without_key.headers["authorization"] == "Bearer unused"


async def test_concurrent_turns_answered_by_content(server: ScriptedOpenAI) -> None:
    def answer(request: Recorded) -> Scripted:
        asked = last_user_message(request.body)
        return Scripted.text(f"re: {asked}", delay=0.05)

    server.responder = answer
    async with OpenAIChatModel(profile(server)) as model:
        replies = await asyncio.gather(
            *(model.complete([{"role": "user", "content": f"q{i}"}], ()) for i in range(8))
        )
    assert [r.content for r in replies] == [f"re: q{i}" for i in range(8)]
    assert all(server.count(f"q{i}") == 1 for i in range(8))


async def test_without_a_key_or_credential_the_model_owns_a_default_credential(
    server: ScriptedOpenAI,
) -> None:
    model = OpenAIChatModel(profile(server, api_key=None, client_id="0000-client"))
    credential = model._owned_credential
    assert type(credential).__name__ == "DefaultAzureCredential"
    await model.close()  # closes the credential it made, without a network
    assert model._owned_credential is None
    assert server.count() == 0
