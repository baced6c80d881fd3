"""What a language model is given and answers, as plain data that survives JSON: the tools it
may call (``ToolSpec``), the calls it makes (``ToolCall``), the tokens it used (``Usage``) and its
reply (``ModelReply``). A turn's model replies are recorded in its orchestration's history and
its agent's archive, so everything here round-trips through ``to_json``/``from_json``. The port a
model is reached through is ``aos.ports.models.ChatModel``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelReply", "ToolCall", "ToolSpec", "Usage"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the model sees it: a name, what it does, and its arguments' JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call as the model made it. ``arguments`` is the JSON text the model wrote, kept as
    written: it may be malformed, and the turn answers that to the model instead of failing."""

    id: str
    name: str
    arguments: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ToolCall:
        return cls(str(value["id"]), str(value["name"]), str(value.get("arguments") or ""))


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def to_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> Usage:
        value = value or {}
        return cls(int(value.get("prompt_tokens", 0)), int(value.get("completion_tokens", 0)))


@dataclass(frozen=True, slots=True)
class ModelReply:
    """One step's answer. ``model`` names what answered (the deployment or model name);
    ``offline`` is true when the offline model answered, so every turn says so."""

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    offline: bool = False
    latency_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "tool_calls": [call.to_json() for call in self.tool_calls],
            "usage": self.usage.to_json(),
            "model": self.model,
            "offline": self.offline,
            "latency_ms": round(self.latency_ms, 3),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ModelReply:
        return cls(
            content=value.get("content"),
            tool_calls=tuple(ToolCall.from_json(c) for c in value.get("tool_calls") or ()),
            usage=Usage.from_json(value.get("usage")),
            model=str(value.get("model") or ""),
            offline=bool(value.get("offline")),
            latency_ms=float(value.get("latency_ms") or 0.0),
        )

    def assistant_message(self) -> dict[str, Any]:
        """The reply as the assistant message the next step's conversation carries."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        return message
