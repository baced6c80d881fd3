"""Alignment and decisions judged by the agent's language model, when it has one.

The seed's purpose-driven API (``evaluate_purpose_alignment``, ``make_purpose_driven_decision``)
asks the model for scores in [0, 1] as JSON, with its reasons. Whatever goes wrong -- the model
cannot be reached, answers something that is not that JSON, scores out of range -- the lexical
scorer answers instead, so the model is an improvement, never a new way to fail. The offline
model never answers in this form, so with no model configured the scorer decides, as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from aos.alignment.scorer import AlignmentResult, PurposeProfile
from aos.domain.chat import ModelReply, ToolSpec

__all__ = ["Judge", "judge_alignment", "judge_options"]

logger = logging.getLogger("aos.agents.judgement")
_MAX_ACTION_CHARS = 8_000


class Judge(Protocol):
    """A language model (``aos.ports.models.ChatModel`` is one)."""

    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[ToolSpec]
    ) -> ModelReply: ...


async def judge_alignment(
    judge: Judge, profile: PurposeProfile, action: Any
) -> AlignmentResult | None:
    """The model's score of ``action`` against ``profile``, or ``None`` if it gave none."""
    answer = await _ask(
        judge,
        profile,
        "Score how well this action serves the purpose, from 0 (unrelated or against it) to 1 "
        '(fully serves it). Answer only JSON: {"score": <number>, "reasons": [<short strings>]}',
        {"action": _text(action)},
    )
    if answer is None:
        return None
    score, reasons = answer.get("score"), answer.get("reasons") or []
    if not isinstance(score, int | float) or not _unit(score) or not isinstance(reasons, list):
        return None
    return AlignmentResult(
        score=float(score),
        reasons=tuple(str(r)[:300] for r in reasons[:5]),
        components={"model": float(score)},
    )


async def judge_options(
    judge: Judge, profile: PurposeProfile, options: Sequence[Any]
) -> tuple[tuple[float, ...], str] | None:
    """The model's score of each option and why, or ``None`` if it gave no usable answer."""
    answer = await _ask(
        judge,
        profile,
        "Score each option by how well it serves the purpose, from 0 to 1, in the order given. "
        'Answer only JSON: {"scores": [<number per option>], "rationale": <one sentence>}',
        {"options": [_text(o) for o in options]},
    )
    if answer is None:
        return None
    scores, rationale = answer.get("scores"), answer.get("rationale")
    if not isinstance(scores, list) or len(scores) != len(options):
        return None
    if not all(_unit(s) for s in scores) or not isinstance(rationale, str):
        return None
    return tuple(float(s) for s in scores), rationale


async def _ask(
    judge: Judge, profile: PurposeProfile, task: str, subject: dict[str, Any]
) -> dict[str, Any] | None:
    sections = "\n".join(f"{name}: {text}" for name, text in profile.sections().items() if text)
    messages = [
        {"role": "system", "content": f"You judge actions for an agent.\n{sections}\n{task}"},
        {"role": "user", "content": json.dumps(subject, ensure_ascii=False)},
    ]
    try:
        reply = await judge.complete(messages, ())
    except Exception as exc:  # any failure: the lexical scorer answers instead
        logger.warning("the model could not judge (%s); using the lexical scorer", exc)
        return None
    if reply.offline or not reply.content:
        return None
    text = reply.content.strip().removeprefix("```json").removeprefix("```").removesuffix("```")
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _unit(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:_MAX_ACTION_CHARS]
