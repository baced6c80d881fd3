"""The offline alignment scorer ranks clearly aligned actions above clearly unrelated ones."""

from __future__ import annotations

from typing import Any

import pytest

from aos.alignment import LexicalAlignmentScorer, PurposeProfile
from aos.alignment.text import flatten_action, stem, terms

CEO = PurposeProfile(
    purpose="Strategic oversight and company growth",
    purpose_scope="Strategic planning, major decisions, resource allocation",
    success_criteria=("Revenue growth", "Team expansion", "Customer satisfaction"),
)
SUPPORT = PurposeProfile(
    purpose="Resolve customer support tickets quickly and politely",
    purpose_scope="Email and chat support for billing and shipping questions",
    success_criteria=("Short response times", "High satisfaction ratings"),
)

# (profile, aligned action, unrelated action)
CASES: list[tuple[PurposeProfile, Any, Any]] = [
    (CEO, "strategic plan for company growth", "order pizza for the party"),
    (CEO, "expand the team to drive revenue growth", {"type": "repaint", "target": "bathroom"}),
    (CEO, {"type": "allocate", "resources": "strategic planning"}, "water the office plants"),
    (CEO, "survey customers to raise satisfaction", "tune the guitar"),
    (SUPPORT, "reply to the billing ticket by email", "expand into new markets"),
    (SUPPORT, {"action": "escalate", "ticket": "shipping question"}, "repaint the lobby"),
    (SUPPORT, "shorten chat response times", "hire a strategic growth consultant"),
]


@pytest.mark.parametrize(("profile", "aligned", "unrelated"), CASES)
def test_aligned_actions_score_above_unrelated_ones(
    profile: PurposeProfile, aligned: Any, unrelated: Any
) -> None:
    scorer = LexicalAlignmentScorer()
    good, bad = scorer.score(aligned, profile), scorer.score(unrelated, profile)
    assert 0.0 <= bad.score < good.score <= 1.0
    assert good.score >= 0.4, good
    assert bad.score <= 0.2, bad
    assert good.matched_terms
    assert not bad.matched_terms


def test_scores_are_explained_in_the_callers_words() -> None:
    result = LexicalAlignmentScorer().score("expand the team to drive revenue growth", CEO)
    assert set(result.matched_terms) == {"team", "revenue", "growth"}
    assert any("success criteria" in r and "revenue" in r for r in result.reasons)
    assert set(result.components) == {"terms", "trigrams"}


def test_scoring_is_deterministic_and_bounded() -> None:
    scorer = LexicalAlignmentScorer()
    first = [scorer.score(a, CEO).score for _, a, _ in CASES]
    assert first == [scorer.score(a, CEO).score for _, a, _ in CASES]
    assert all(0.0 <= s <= 1.0 for s in first)


def test_empty_or_stopword_actions_score_zero() -> None:
    result = LexicalAlignmentScorer().score({"type": None, "the": "and"}, CEO)
    assert result.score == 0.0
    assert "no content words" in result.reasons[0]


def test_text_helpers() -> None:
    assert stem("hiring") == stem("hires") == stem("hired") == "hire"
    assert (
        flatten_action({"jobTitle": "engineer", "max_salary": 10})
        == "job Title engineer max salary 10"
    )
    assert terms("The Strategic planning!") == ["strateg", "plan"]


def test_term_weight_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="term_weight"):
        LexicalAlignmentScorer(term_weight=1.5)


def test_only_the_first_max_action_chars_are_scored() -> None:
    from aos.alignment.scorer import MAX_ACTION_CHARS

    scorer = LexicalAlignmentScorer()
    filler = " ".join(f"zq{i}" for i in range(MAX_ACTION_CHARS))[:MAX_ACTION_CHARS]
    beyond = filler + " strategic company growth revenue"
    assert scorer.score(beyond, CEO) == scorer.score(filler, CEO)
    within = "strategic company growth revenue " + filler
    assert scorer.score(within, CEO).score > scorer.score(filler, CEO).score
    # a word at the limit is not cut into a different word
    exact = "x" * (MAX_ACTION_CHARS - 3) + " growth"
    assert "growth" not in scorer.score(exact, CEO).matched_terms
