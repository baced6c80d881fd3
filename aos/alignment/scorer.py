"""Scoring an action against an agent's purpose.

``AlignmentScorer`` is the strategy seam: agents only ever call ``scorer.score(action, profile)``,
so a language-model scorer can replace ``LexicalAlignmentScorer`` without touching an agent class.

The lexical scorer explains itself. It compares the action's stemmed terms with the profile's
sections (purpose, scope, success criteria, goals), each section weighted, and adds a character
trigram overlap that catches related word forms the stemmer keeps apart. The score is

    0.75 * term_match + 0.25 * trigram_overlap      (clamped to [0, 1])

where ``term_match`` is the weighted share of the action's distinct terms found in the profile,
boosted towards 1 when several terms match, and ``trigram_overlap`` is the share of the action's
trigrams present in the profile. The reasons list the matched terms per section.

Only the first ``MAX_ACTION_CHARS`` (16,384) characters of the action's text are scored, cut at a
word boundary. The stemmer is pure Python: a 64 KB action of distinct words (the largest body the
API accepts) took about 570 ms of CPU with a cold stem cache, which no request should cost; 16 K
characters take about a quarter of that, and an action description longer than a few pages says
nothing more about alignment. Shorter actions score exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aos.alignment.text import flatten_action, surface_forms, terms, trigrams

__all__ = [
    "MAX_ACTION_CHARS",
    "SECTION_WEIGHTS",
    "AlignmentResult",
    "AlignmentScorer",
    "LexicalAlignmentScorer",
    "PurposeProfile",
]

MAX_ACTION_CHARS = 16_384
"""Characters of an action's text that are scored; the rest is ignored (see the docstring)."""

SECTION_WEIGHTS: dict[str, float] = {
    "purpose": 1.0,
    "success_criteria": 0.9,
    "purpose_scope": 0.8,
    "goals": 0.6,
}


@dataclass(frozen=True, slots=True)
class AlignmentResult:
    """A score in [0, 1] and why: the terms that matched and a sentence per contributing section."""

    score: float
    matched_terms: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    components: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "matched_terms": list(self.matched_terms),
            "reasons": list(self.reasons),
            "components": dict(self.components),
        }


@dataclass(frozen=True, slots=True)
class PurposeProfile:
    """What an action is measured against, as text per section."""

    purpose: str
    purpose_scope: str = ""
    success_criteria: tuple[str, ...] = ()
    goals: tuple[str, ...] = ()

    def sections(self) -> dict[str, str]:
        return {
            "purpose": self.purpose,
            "purpose_scope": self.purpose_scope,
            "success_criteria": " ".join(self.success_criteria),
            "goals": " ".join(self.goals),
        }


class AlignmentScorer(Protocol):
    """Scores actions against a purpose profile. Implementations must be deterministic for a given
    input if decisions are to be reproducible (the entity may re-run an operation)."""

    def score(self, action: Any, profile: PurposeProfile) -> AlignmentResult: ...


class LexicalAlignmentScorer:
    """Deterministic, offline text-similarity scorer (see the module docstring for the formula)."""

    def __init__(self, *, term_weight: float = 0.75, weights: dict[str, float] | None = None):
        if not 0.0 <= term_weight <= 1.0:
            raise ValueError("term_weight must be within [0, 1]")
        self._term_weight = term_weight
        self._weights = dict(SECTION_WEIGHTS if weights is None else weights)

    def score(self, action: Any, profile: PurposeProfile) -> AlignmentResult:
        action_text = _bounded(flatten_action(action))
        forms = surface_forms(action_text)
        action_terms = list(forms)
        if not action_terms:
            return AlignmentResult(0.0, (), ("the action has no content words to compare",))

        section_terms = {name: set(terms(text)) for name, text in profile.sections().items()}
        best_weight: dict[str, float] = {}
        matched_by_section: dict[str, list[str]] = {}
        for name, vocabulary in section_terms.items():
            weight = self._weights.get(name, 0.0)
            hits = [t for t in action_terms if t in vocabulary]
            if hits and weight > 0:
                matched_by_section[name] = hits
                for t in hits:
                    best_weight[t] = max(best_weight.get(t, 0.0), weight)

        coverage = sum(best_weight.values()) / len(action_terms)
        # Two or three matching terms are strong evidence even in a long action description.
        breadth = 1.0 - 0.5 ** len(best_weight)
        term_match = max(coverage, breadth * max(best_weight.values(), default=0.0))

        profile_grams = trigrams(" ".join(profile.sections().values()))
        action_grams = trigrams(action_text)
        gram_overlap = (
            len(action_grams & profile_grams) / len(action_grams) if action_grams else 0.0
        )

        raw = self._term_weight * term_match + (1.0 - self._term_weight) * gram_overlap
        score = round(min(1.0, max(0.0, raw)), 4)
        words = {name: [forms[t] for t in hits] for name, hits in matched_by_section.items()}
        return AlignmentResult(
            score=score,
            matched_terms=tuple(forms[t] for t in best_weight),
            reasons=tuple(_reasons(words, gram_overlap)),
            components={"terms": round(term_match, 4), "trigrams": round(gram_overlap, 4)},
        )


def _bounded(text: str) -> str:
    """``text`` up to ``MAX_ACTION_CHARS``, without a word cut in two."""
    if len(text) <= MAX_ACTION_CHARS:
        return text
    head = text[: MAX_ACTION_CHARS + 1]
    cut = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    return head[:cut] if cut > 0 else head[:MAX_ACTION_CHARS]


_SECTION_LABELS = {
    "purpose": "purpose",
    "purpose_scope": "purpose scope",
    "success_criteria": "success criteria",
    "goals": "goals",
}


def _reasons(matched: dict[str, list[str]], gram_overlap: float) -> Iterable[str]:
    for name, hits in matched.items():
        yield f"matches the {_SECTION_LABELS.get(name, name)} on: {', '.join(hits)}"
    if not matched:
        yield "no term of the action appears in the purpose, scope, success criteria or goals"
    yield f"{gram_overlap:.0%} of the action's character trigrams occur in the purpose profile"
