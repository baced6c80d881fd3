"""Sizes as the entity state stores text: JSON with everything outside ASCII escaped, so a
character may take 1, 2, 6 or 12 bytes. Bounds on stored state are bounds on these bytes."""

from __future__ import annotations

import json

__all__ = ["truncate_escaped"]


def truncate_escaped(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that takes at most ``max_bytes`` as stored JSON (non-ASCII
    escaped: a character outside ASCII takes 6 or 12 bytes, not 1)."""
    if text.isascii() and len(json.dumps(text)) - 2 <= max_bytes:
        return text
    size = 0
    for i, char in enumerate(text):
        size += len(json.dumps(char)) - 2
        if size > max_bytes:
            return text[:i]
    return text
