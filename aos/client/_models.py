"""The dead-letter routes' answers: the service's own models (``aos.api.schemas``), under the
names this client has always exported."""

from __future__ import annotations

from aos.api.schemas import DeadLetterItem, DeadLetterList
from aos.api.schemas import LetterReplayed as DeadLetterReplayed

__all__ = ["DeadLetterItem", "DeadLetterList", "DeadLetterReplayed"]
