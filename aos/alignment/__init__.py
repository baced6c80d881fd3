"""Purpose alignment: how well an action serves an agent's purpose. Pure; no Azure imports."""

from aos.alignment.scorer import (
    AlignmentResult,
    AlignmentScorer,
    LexicalAlignmentScorer,
    PurposeProfile,
)

__all__ = ["AlignmentResult", "AlignmentScorer", "LexicalAlignmentScorer", "PurposeProfile"]
