"""The HTTP API's paths as the Functions host registers them: one function per route template,
with the methods it serves.

This is what indexing the app needs (``aos.functions.http_functions``), so it is kept apart from
the handlers and models (``aos.api.http``), which load on the first request: a shorter cold start.
A unit test checks that it lists exactly the operations of ``aos.api.http.OPERATIONS``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from aos.domain.conversation import TURN_ID_PATTERN
from aos.domain.models import AGENT_ID_PATTERN

__all__ = [
    "DEFAULT_PAGE",
    "FUNCTIONS",
    "MAX_HISTORY_PAGE",
    "MAX_HISTORY_TYPES",
    "MAX_PAGE",
    "PATH_PARAMETERS",
    "Path",
]

DEFAULT_PAGE, MAX_PAGE, MAX_HISTORY_PAGE = 50, 200, 1000
MAX_HISTORY_TYPES = 8
"""Azure Tables takes at most 15 comparisons in a filter; a history query uses up to 6 besides
one per type (``aos.adapters.azure.history``)."""


class Path(NamedTuple):
    route: str
    """As registered with the host, which adds the ``api/`` prefix."""
    methods: tuple[str, ...]


FUNCTIONS: dict[str, Path] = {
    "agents": Path(
        "agents",
        (
            "GET",
            "POST",
        ),
    ),
    "agent_item": Path(
        "agents/{agent_id}",
        (
            "DELETE",
            "GET",
            "PATCH",
            "PUT",
        ),
    ),
    "agent_goals": Path(
        "agents/{agent_id}/goals",
        (
            "GET",
            "POST",
        ),
    ),
    "agent_goal": Path(
        "agents/{agent_id}/goals/{goal_id}",
        (
            "DELETE",
            "GET",
            "PATCH",
        ),
    ),
    "agent_events": Path("agents/{agent_id}/events", ("POST",)),
    "agent_history": Path("agents/{agent_id}/history", ("GET",)),
    "agent_purge": Path("agents/{agent_id}/purge", ("GET",)),
    "agent_reminders": Path("agents/{agent_id}/reminders", ("GET",)),
    "agent_reminder": Path("agents/{agent_id}/reminders/{reminder_id}", ("DELETE", "PUT")),
    "agent_alignment": Path("agents/{agent_id}/alignment", ("POST",)),
    "agent_messages": Path("agents/{agent_id}/messages", ("POST",)),
    "agent_turn": Path("agents/{agent_id}/turns/{turn_id}", ("GET",)),
    "agent_turn_approval": Path("agents/{agent_id}/turns/{turn_id}/approval", ("POST",)),
    "events": Path("events", ("POST",)),
    "deadletters": Path("deadletters", ("GET",)),
    "deadletter_item": Path("deadletters/{letter_id}", ("GET",)),
    "deadletter_replay": Path("deadletters/{letter_id}/replay", ("POST",)),
    "poison": Path("poison", ("GET",)),
    "poison_item": Path("poison/{letter_id}", ("GET",)),
    "poison_replay": Path("poison/{letter_id}/replay", ("POST",)),
    "health": Path("health", ("GET",)),
    "openapi": Path("openapi.json", ("GET",)),
}

PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "agent_id": {"type": "string", "pattern": AGENT_ID_PATTERN},
    "goal_id": {"type": "string", "pattern": AGENT_ID_PATTERN},
    "reminder_id": {"type": "string", "pattern": AGENT_ID_PATTERN},
    "letter_id": {"type": "string", "pattern": r"^[0-9]{17}-[0-9a-f]{8}$"},
    "turn_id": {"type": "string", "pattern": TURN_ID_PATTERN},
}
"""The schema of each route parameter (``{agent_id}``): what ``path_id`` accepts."""
