"""Turning text and JSON actions into comparable terms: tokens, light stems and character trigrams.

Pure standard library and deterministic: the same input gives the same terms on every machine, so an
alignment score can be explained and reproduced without a network or a model.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["STOPWORDS", "flatten_action", "stem", "surface_forms", "terms", "trigrams"]

_WORD = re.compile(r"[a-z0-9]+")

STOPWORDS = frozenset(
    """
    a about above after again all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no
    nor not now of off on once only or other our ours out over own same she should so some such
    than that the their theirs them then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours
    type kind action data value item thing things
    """.split()  # noqa: SIM905 - a word list reads best as text
)


@functools.cache
def _english_stemmer() -> Any:
    """Made on first use: importing ``snowballstemmer`` imports every language's stemmer, about
    10 ms of a cold start (``bench/import_time.py``) that an app which never scores would pay."""
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=16384)
def stem(word: str) -> str:
    """The Snowball English (Porter2) stem of a lower-case word, so that "hiring", "hires" and
    "hired" all match "hire". Memoised: the stemmer is pure Python and vocabularies repeat."""
    return str(_english_stemmer().stemWord(word))


def _words(text: str) -> Iterator[str]:
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            yield word


def terms(text: str) -> list[str]:
    """Stemmed content words of ``text``, in order, with repeats."""
    return [stem(w) for w in _words(text)]


def surface_forms(text: str) -> dict[str, str]:
    """Each stem of ``text`` mapped to the first word it came from, to explain matches in the
    caller's own words ("revenue", not the stem "revenu")."""
    forms: dict[str, str] = {}
    for word in _words(text):
        forms.setdefault(stem(word), word)
    return forms


def trigrams(text: str) -> set[str]:
    """Character trigrams of the content words (padded), for fuzzy overlap between word forms that
    the stemmer keeps apart ("strategy" / "strategic")."""
    grams: set[str] = set()
    for word in _words(text):
        padded = f" {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def flatten_action(action: Any) -> str:
    """Text of an action given as text or JSON: keys and values alike, so ``{"type": "hire",
    "role": "engineer"}`` reads as "hire role engineer". Snake/camel case keys are split."""
    parts: list[str] = []
    _collect(action, parts)
    return " ".join(parts)


def _collect(value: Any, parts: list[str]) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        parts.append(_split_identifier(value))
    elif isinstance(value, int | float):
        parts.append(str(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            parts.append(_split_identifier(str(key)))
            _collect(item, parts)
    elif isinstance(value, Iterable):
        for item in value:
            _collect(item, parts)
    else:
        parts.append(str(value))


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _split_identifier(text: str) -> str:
    return _CAMEL.sub(" ", text).replace("_", " ")
