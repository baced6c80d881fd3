"""The shapes of the HTTP API: what each route accepts and answers.

Routes validate bodies with these models and build answers with them, and the OpenAPI document
is generated from them, so the document cannot drift from what the routes really do. The models
that clients share are defined in ``aos.api_schemas`` (no Azure SDK imports, so ``aos.client``
can use them) and re-exported here; the history query's parsing is server-only and lives here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from aos.api_schemas import (
    AgentList,
    AgentPatch,
    AgentResource,
    AlignmentRequest,
    AlignmentResponse,
    BroadcastAccepted,
    DeadLetterItem,
    DeadLetterList,
    EventAccepted,
    EventIn,
    FieldProblem,
    GoalList,
    Health,
    HistoryItem,
    HistoryList,
    LetterReplayed,
    Problem,
    RegisterAgent,
    ReplaceAgent,
)
from aos.errors import InvalidInputError
from aos.functions.routes import DEFAULT_PAGE, MAX_HISTORY_PAGE, MAX_HISTORY_TYPES
from aos.history import HISTORY_PREFIX, HistoryQuery
from aos.models import EVENT_TYPE_PATTERN, Timestamp, format_timestamp, full_match
from aos.storage.index import decode_token, encode_token, invalid_token

__all__ = [
    "AgentList",
    "AgentPatch",
    "AgentResource",
    "AlignmentRequest",
    "AlignmentResponse",
    "BroadcastAccepted",
    "DeadLetterItem",
    "DeadLetterList",
    "EventAccepted",
    "EventIn",
    "FieldProblem",
    "GoalList",
    "Health",
    "HistoryFilter",
    "HistoryItem",
    "HistoryList",
    "LetterReplayed",
    "Problem",
    "RegisterAgent",
    "ReplaceAgent",
]


def _split_types(value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.strip() for t in (value or "").split(",") if t.strip()))


class HistoryFilter(BaseModel):
    """The query parameters of ``GET /api/agents/{agent_id}/history``. Other parameters (such as
    Azure's ``code`` function key) are ignored."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_HISTORY_PAGE)
    continuation: str | None = None
    type: str | None = Field(
        default=None,
        description=f"only these types, at most {MAX_HISTORY_TYPES} (comma-separated; decisions "
        "have 'decision')",
    )
    kind: Literal["event", "decision", "failure"] | None = None
    since: Timestamp | None = Field(
        default=None,
        validation_alias=AliasChoices("since", "from"),
        description="recorded at or after (ISO 8601); also accepted as 'from'",
    )
    until: Timestamp | None = Field(
        default=None,
        validation_alias=AliasChoices("until", "to"),
        description="recorded before (ISO 8601); also accepted as 'to'",
    )

    @field_validator("type")
    @classmethod
    def _types(cls, value: str | None) -> str | None:
        names = _split_types(value)
        for name in names:
            if not full_match(EVENT_TYPE_PATTERN, name):
                raise ValueError(f"{name!r} is not an event type")
        if len(names) > MAX_HISTORY_TYPES:
            raise ValueError(f"give at most {MAX_HISTORY_TYPES} types")
        return value

    @model_validator(mode="after")
    def _valid(self) -> HistoryFilter:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be later than since")
        return self

    @property
    def types(self) -> tuple[str, ...]:
        return _split_types(self.type)

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> HistoryFilter:
        """From query parameters; ``InvalidInputError`` naming each bad ``query/<name>``."""
        try:
            return cls.model_validate(dict(params))
        except ValidationError as exc:
            raise InvalidInputError.from_pydantic(
                exc, prefix=("query",), message="The query is not valid"
            ) from exc

    def to_query(self) -> HistoryQuery:
        return HistoryQuery(
            limit=self.limit,
            continuation=_history_position(self.continuation),
            kind=self.kind,
            types=self.types,
            since=format_timestamp(self.since) if self.since else None,
            until=format_timestamp(self.until) if self.until else None,
        )

    def next_page(self, continuation: str) -> dict[str, Any]:
        """The query parameters of the page after the one that ended at ``continuation``."""
        params = self.model_dump(mode="json", exclude={"continuation"}, exclude_none=True)
        return {**params, "continuation": encode_token(continuation)}


_HISTORY_POSITION = re.escape(HISTORY_PREFIX) + r"[0-9]{17}\|[0-9]{15}"
"""A history row key (``aos.history.history_row_key``): all a history token may carry."""


def _history_position(token: str | None) -> str | None:
    """The row key a continuation token stands for."""
    if token is None:
        return None
    position = decode_token(token)
    if not isinstance(position, str) or not full_match(_HISTORY_POSITION, position):
        raise invalid_token("not a position in the history")
    return position
