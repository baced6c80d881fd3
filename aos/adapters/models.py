"""``ChatModel`` on the ``openai`` SDK: Azure OpenAI / Foundry, or any OpenAI-compatible endpoint.

One ``OpenAIChatModel`` per model profile (``aos.settings.ModelProfile``). For ``azure_openai`` the
SDK's ``AsyncAzureOpenAI`` calls ``<endpoint>/openai/deployments/<deployment>/chat/completions
?api-version=<version>`` with the profile's key (``api-key`` header) or, without a key, a Microsoft
Entra ID token (``Authorization: Bearer``) from ``DefaultAzureCredential`` (the app's managed
identity; ``client_id`` picks a user-assigned one) for ``https://cognitiveservices.azure.com``. For
``openai`` it is ``AsyncOpenAI(base_url=endpoint)`` with the deployment as the model name.

Retries are the SDK's, because it already does what the endpoint asks (verified in openai 3.51.0,
``openai/_base_client.py``; docs/SDK_NOTES.md has the details):

* it retries 408, 409, 429 and every 5xx, a timeout and a connection error, ``max_retries`` times
  (the request is sent at most ``1 + max_retries`` times); the server can force the decision either
  way with ``x-should-retry: true|false``;
* before a retry it waits ``retry-after-ms`` (milliseconds, preferred) or ``retry-after`` (seconds,
  fractions allowed, or an HTTP date) when that is above 0 and at most 120 s; otherwise (no header,
  0, malformed, or after a timeout) it backs off exponentially: 0.5 s, 1 s, 2 s ... capped at 8 s,
  minus up to 25 % jitter;
* a ``retry-after`` above 120 s is not waited for: the SDK raises at once, and this adapter answers
  ``ModelError(retryable=True)`` with the wait in the message, leaving the decision to the caller.

``timeout_seconds`` bounds each attempt's connect and each read (time between bytes), not a whole
call: the worst case is about ``(1 + max_retries) * timeout_seconds`` plus the waits between
attempts, which the activity that calls the model must allow for.

SDK errors become ``ModelError`` here, at the edge: throttling, 408/409/5xx, timeouts and connection
failures are ``retryable``; 400, 401, 403, 404, 422 and the like are not. Messages carry the
profile, the status and the service's own error message, never a key or a token.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import openai
from azure.core.exceptions import AzureError, ServiceRequestError, ServiceResponseError
from openai import AsyncAzureOpenAI, AsyncOpenAI

from aos.ports.models import ChatModel, ModelError, ModelReply, ToolCall, ToolSpec, Usage
from aos.settings import ModelProfile

if TYPE_CHECKING:
    from types import TracebackType

    import httpx2
    from azure.core.credentials_async import AsyncTokenCredential
    from openai.types.chat import ChatCompletion

__all__ = ["COGNITIVE_SERVICES_SCOPE", "OpenAIChatModel", "chat_model_for"]

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
_MAX_DETAIL = 300


class OpenAIChatModel(ChatModel):
    """A model profile behind the ``openai`` SDK's async client.

    ``credential`` (an async Entra credential) replaces the ``DefaultAzureCredential`` that an
    ``azure_openai`` profile without a key would create; it is the caller's to close.
    ``http_client`` (an ``httpx2.AsyncClient``) is handed to the SDK, which closes it in ``close``.
    """

    def __init__(
        self,
        profile: ModelProfile,
        *,
        credential: AsyncTokenCredential | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.profile = profile
        self._owned_credential: AsyncTokenCredential | None = None
        self._client: AsyncOpenAI
        if profile.api == "openai":
            self._client = AsyncOpenAI(
                base_url=profile.endpoint,
                api_key=profile.api_key or "unused",  # local servers often want none
                timeout=profile.timeout_seconds,
                max_retries=profile.max_retries,
                http_client=http_client,
            )
        elif profile.api_key:
            self._client = AsyncAzureOpenAI(
                azure_endpoint=profile.endpoint,
                azure_deployment=profile.deployment,
                api_version=profile.api_version,
                api_key=profile.api_key,
                timeout=profile.timeout_seconds,
                max_retries=profile.max_retries,
                http_client=http_client,
            )
        else:
            self._client = AsyncAzureOpenAI(
                azure_endpoint=profile.endpoint,
                azure_deployment=profile.deployment,
                api_version=profile.api_version,
                azure_ad_token_provider=self._token_provider(credential),
                timeout=profile.timeout_seconds,
                max_retries=profile.max_retries,
                http_client=http_client,
            )

    def _token_provider(
        self, credential: AsyncTokenCredential | None
    ) -> Callable[[], Awaitable[str]]:
        """A bearer token provider on Entra ID. The SDK calls it before every attempt; the
        azure-core policy behind it caches the token and refreshes it before it expires."""
        from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

        if credential is None:
            credential = DefaultAzureCredential(managed_identity_client_id=self.profile.client_id)
            self._owned_credential = credential
        return get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE)

    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]
    ) -> ModelReply:
        extra: dict[str, Any] = {"tools": [t.to_openai() for t in tools]} if tools else {}
        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.create(
                model=self.profile.deployment,
                messages=cast(Any, list(messages)),
                **extra,
            )
        except Exception as exc:
            error = self._model_error(exc)
            if error is None:
                raise
            raise error from exc
        latency_ms = (time.perf_counter() - started) * 1000
        return self._reply(completion, latency_ms)

    def _reply(self, completion: ChatCompletion, latency_ms: float) -> ModelReply:
        if not completion.choices:
            raise ModelError(
                f"Model profile {self.profile.name!r}: the answer had no choices",
                retryable=False,
            )
        message = completion.choices[0].message
        calls = []
        for call in message.tool_calls or ():
            function = getattr(call, "function", None)
            if function is not None:
                calls.append(ToolCall(call.id, function.name, function.arguments or ""))
            else:  # a custom tool call: never asked for, but keep what the model wrote
                custom = getattr(call, "custom", None)
                calls.append(
                    ToolCall(
                        call.id, str(getattr(custom, "name", "")), getattr(custom, "input", "")
                    )
                )
        usage = completion.usage
        return ModelReply(
            content=message.content,
            tool_calls=tuple(calls),
            usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
            model=completion.model or self.profile.deployment,
            offline=False,
            latency_ms=latency_ms,
        )

    def _model_error(self, exc: Exception) -> ModelError | None:
        """The one translation of SDK (and Entra credential) errors into ``ModelError``; None
        for anything else (a bug, not the model's answer), which propagates as it is."""
        profile = self.profile
        where = f"Model profile {profile.name!r} ({profile.deployment})"
        attempts = f"{1 + profile.max_retries} attempt(s)"
        if isinstance(exc, openai.APITimeoutError):
            return ModelError(
                f"{where}: no answer within {profile.timeout_seconds:g} s, after up to {attempts}",
                retryable=True,
            )
        if isinstance(exc, openai.APIConnectionError):
            return ModelError(
                f"{where}: could not connect to {self._host()}, after up to {attempts}",
                retryable=True,
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = self._detail(exc.body)
            wait = exc.response.headers.get("retry-after-ms") or exc.response.headers.get(
                "retry-after"
            )
            retryable = status in _RETRYABLE_STATUSES or status >= 500
            text = f"{where}: HTTP {status}" + (f": {detail}" if detail else "")
            if retryable:
                text += f" (after up to {attempts}" + (f"; retry-after {wait})" if wait else ")")
            return ModelError(self._redact(text), retryable=retryable, status=status)
        if isinstance(exc, openai.OpenAIError):  # e.g. an answer that is not a chat completion
            return ModelError(self._redact(f"{where}: {exc}"), retryable=False)
        if isinstance(exc, AzureError):  # the Entra credential could not get a token
            return ModelError(
                f"{where}: no Microsoft Entra ID token for {COGNITIVE_SERVICES_SCOPE} "
                f"({type(exc).__name__}: {self._redact(str(exc))[:_MAX_DETAIL]})",
                retryable=isinstance(exc, ServiceRequestError | ServiceResponseError),
            )
        return None

    def _detail(self, body: object) -> str:
        """The service's own error message (the SDK hands over the ``error`` object)."""
        if isinstance(body, dict):
            message = body.get("message")
            code = body.get("code")
            text = str(message) if message else ""
            if code and str(code) not in text:
                text = f"{code}: {text}" if text else str(code)
        else:
            text = str(body or "")
        return text[:_MAX_DETAIL]

    def _redact(self, text: str) -> str:
        key = self.profile.api_key
        return text.replace(key, "***") if key else text

    def _host(self) -> str:
        return urlsplit(self.profile.endpoint).netloc

    async def close(self) -> None:
        """Close the SDK's HTTP client, and the credential if this model created it."""
        try:
            await self._client.close()
        finally:
            if self._owned_credential is not None:
                credential, self._owned_credential = self._owned_credential, None
                await credential.close()

    async def __aenter__(self) -> OpenAIChatModel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def chat_model_for(profile: ModelProfile) -> ChatModel:
    """The model a profile describes (every API the settings accept goes through the SDK)."""
    return OpenAIChatModel(profile)
