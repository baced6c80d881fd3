"""The bounds that keep an agent's entity state small, whatever it is sent.

Azure Storage keeps entity state inline only up to ~45 KB (larger state goes to blobs, slower and
costlier), so AOS keeps the worst case at or under 32 KB: the parts callers control (spec, goals,
key/value state) share one byte budget that writes are checked against, and the parts that grow
with traffic (event and decision windows, the de-duplication window) are capped by count and by the
size of each entry. ``worst_case_state_bytes`` in ``aos.domain.document`` proves the sum for a given
``Limits``; settings refuse limits whose worst case exceeds ``max_state_bytes``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Limits"]


class Limits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    recent_events: int = Field(default=8, ge=1, le=100)
    """Events kept in the entity's window (the full history is in the archive table)."""
    recent_decisions: int = Field(default=8, ge=1, le=100)
    """Decisions kept in the entity's window."""
    processed_ids: int = Field(default=500, ge=16, le=4096)
    """Recent event and decision ids remembered for de-duplication."""
    event_preview_bytes: int = Field(default=256, ge=0, le=4096)
    """An event's data is kept in the window only if its JSON is at most this long."""
    user_state_bytes: int = Field(default=10_240, ge=1024, le=40_960)
    """Budget for spec + goals + key/value state together; writes beyond it are refused."""
    max_goals: int = Field(default=32, ge=1, le=256)
    max_reminders: int = Field(default=16, ge=1, le=64)
    """Active reminders per agent (they also count in ``user_state_bytes``)."""
    conversation_bytes: int = Field(default=3_072, ge=512, le=16_384)
    """The conversation window a thinking agent keeps (summary + recent messages); the whole
    transcript of every turn is in the history archive."""
    max_state_bytes: int = Field(default=32_768, ge=4096, le=46_080)
    """The promise: serialised entity state never exceeds this."""
