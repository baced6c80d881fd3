"""The offline model: what answers a turn when no model is configured, with no key and no network.

It is deterministic and says what it is in every reply (``offline: true``, model
``aos-offline``), so ``make run``, the README's examples and the tests behave the same everywhere.
What it does with the last user message, in this order:

1. **A message that starts with a tool's name** (``place_order item=widget quantity=3``,
   ``update_state key=mood value="calm"``): it calls that tool with the message's ``name=value``
   pairs as arguments (each value read as JSON when it is JSON, else as text).
2. **Options** (``... options: ship today, ship next week``): it calls ``decide`` with them, so the
   agent's purpose scorer chooses (purpose-driven agents).
3. Otherwise **the purpose scorer** reads the message against the agent's purpose (taken from the
   prompt's ``Purpose:`` line) and picks the tool whose description matches the message best,
   when every required argument can be filled from ``name=value`` pairs; else it answers with
   how well the message aligns with the purpose, and why.

After tool results it answers with what the tools returned. Nothing here is clever; it is a
stand-in with the shape of a real model, so that turns, tools and approvals work end to end.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from aos.alignment.scorer import LexicalAlignmentScorer, PurposeProfile
from aos.ports.models import ChatModel, ModelReply, ToolCall, ToolSpec, Usage

__all__ = ["OFFLINE_MODEL_NAME", "OfflineModel"]

OFFLINE_MODEL_NAME = "aos-offline"
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|\[[^\]]*\]|\{[^}]*\}|\S+)")
_OPTIONS = re.compile(r"options?\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_TOOL_MATCH_THRESHOLD = 0.35


class OfflineModel(ChatModel):
    """A deterministic ``ChatModel`` (see the module docstring)."""

    def __init__(self) -> None:
        self._scorer = LexicalAlignmentScorer()

    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]
    ) -> ModelReply:
        started = time.perf_counter()
        reply = self._answer(list(messages), {t.name: t for t in tools})
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in messages)
        completion_tokens = len((reply[0] or "").split()) + 8 * len(reply[1])
        return ModelReply(
            content=reply[0],
            tool_calls=reply[1],
            usage=Usage(prompt_tokens, completion_tokens),
            model=OFFLINE_MODEL_NAME,
            offline=True,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def _answer(
        self, messages: list[dict[str, Any]], tools: dict[str, ToolSpec]
    ) -> tuple[str | None, tuple[ToolCall, ...]]:
        last = messages[-1] if messages else {}
        if last.get("role") == "tool":
            return _summarise_results(messages), ()
        prompt = str(last.get("content") or "")
        pairs = _pairs(prompt)
        first = prompt.split(maxsplit=1)[0].strip(".,:;!?") if prompt.strip() else ""
        if first in tools:
            return None, (_call(first, pairs, len(messages)),)
        options = _OPTIONS.search(prompt)
        if options and "decide" in tools:
            choices = [o.strip() for o in options.group(1).split(",") if o.strip()][:20]
            if choices:
                arguments = {"options": choices}
                return None, (_call("decide", arguments, len(messages)),)
        profile = PurposeProfile(purpose=_purpose(messages) or "")
        best = self._best_tool(prompt, tools, pairs)
        if best is not None:
            return None, (_call(best, pairs, len(messages)),)
        if not profile.purpose:
            return "Offline model: no purpose to weigh this against.", ()
        result = self._scorer.score(prompt, profile)
        verdict = "fits" if result.score >= 0.3 else "does not clearly fit"
        because = (
            f" (matched: {', '.join(result.matched_terms[:8])})" if result.matched_terms else ""
        )
        return (
            f"Offline model (no model configured): this {verdict} my purpose "
            f"'{profile.purpose[:200]}', alignment {result.score:.2f}{because}.",
            (),
        )

    def _best_tool(
        self, prompt: str, tools: dict[str, ToolSpec], pairs: dict[str, Any]
    ) -> str | None:
        """The tool whose description fits the message best, if its required arguments are all
        given as ``name=value`` pairs."""
        best: tuple[float, str] | None = None
        for name, spec in tools.items():
            required = spec.parameters.get("required") or []
            if not pairs or not all(arg in pairs for arg in required):
                continue
            score = self._scorer.score(prompt, PurposeProfile(purpose=spec.description)).score
            if score >= _TOOL_MATCH_THRESHOLD and (best is None or score > best[0]):
                best = (score, name)
        return best[1] if best else None


def _pairs(text: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in _PAIR.findall(text):
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


def _call(name: str, arguments: dict[str, Any], salt: int) -> ToolCall:
    return ToolCall(
        id=f"call_{salt}_{name}", name=name, arguments=json.dumps(arguments, ensure_ascii=False)
    )


def _purpose(messages: list[dict[str, Any]]) -> str | None:
    system = next((m for m in messages if m.get("role") == "system"), None)
    if system is None:
        return None
    for line in str(system.get("content") or "").splitlines():
        if line.startswith("Purpose:"):
            return line.removeprefix("Purpose:").strip()
    return None


def _summarise_results(messages: list[dict[str, Any]]) -> str:
    """The answer after a step of tool calls: each call and what it returned."""
    results: list[str] = []
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            names[call["id"]] = call["function"]["name"]
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        name = names.get(str(message.get("tool_call_id")), "tool")
        results.append(f"{name} -> {str(message.get('content'))[:300]}")
    return "Offline model: " + "; ".join(reversed(results))
