"""Port: a language model that answers one step of a turn (``ChatModel``).

A step is one chat completion: the conversation so far (OpenAI chat messages, the lingua franca of
every compatible endpoint) and the tools the agent may call; the answer is text, tool calls, or
both, with the tokens it used. Everything here is plain data that survives JSON, because a step's
reply is recorded in the turn orchestration's history (``ModelReply.to_json``/``from_json``) and
replayed from there, never asked for again.

Adapters: ``aos.adapters.models`` (the ``openai`` SDK: Azure OpenAI / Foundry with Entra ID or a
key, or any OpenAI-compatible endpoint) and ``aos.services.offline_model`` (deterministic, no
network: the default when no model is configured).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from aos.domain.chat import ModelReply, ToolCall, ToolSpec, Usage

__all__ = ["ChatModel", "ModelError", "ModelReply", "ToolCall", "ToolSpec", "Usage"]


class ModelError(Exception):
    """The model could not answer. ``retryable``: a later attempt may succeed (throttled,
    unavailable, timed out) -- the adapter has already retried as the endpoint asked
    (``retry-after``); ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class ChatModel(ABC):
    """One model endpoint (a profile of ``AOS_MODELS__<adapter>__*``, or the offline model)."""

    @abstractmethod
    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]
    ) -> ModelReply:
        """Answer one step. Raises ``ModelError`` when the endpoint cannot answer."""

    async def close(self) -> None:
        """Release connections (the default holds none)."""
        return
