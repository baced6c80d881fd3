"""The concrete agents AOS ships: ``GenericPurposeDrivenAgent`` and ``LeadershipAgent``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import JsonValue

from aos.agents.purpose import PurposeDrivenAgent
from aos.domain.document import id_digest
from aos.domain.models import Event, GoalCreate
from aos.domain.validation import parse, within_data

__all__ = ["GenericPurposeDrivenAgent", "LeadershipAgent", "proposed_goal"]


class GenericPurposeDrivenAgent(PurposeDrivenAgent):
    """A purpose-driven agent for any purpose: records every event, decides on decision requests
    (events whose data has ``options``), and keeps its goals. The kind to start with."""

    kind: ClassVar[str] = "generic"


class LeadershipAgent(PurposeDrivenAgent):
    """An agent that steers: besides deciding, it vets proposed goals against its purpose.

    A ``goal.proposed`` event (data: ``description``, optional ``id``) becomes a goal when its
    alignment reaches ``goal_acceptance_threshold``; otherwise it is declined with the reasons.
    Either way the outcome is the event's result and the event is recorded.
    """

    kind: ClassVar[str] = "leadership"
    default_purpose: ClassVar[str] = "Strategic oversight and organisational growth"
    goal_acceptance_threshold: ClassVar[float] = 0.3

    def on_event(self, event: Event) -> JsonValue:
        proposed = proposed_goal(event)
        if proposed is not None:
            description = proposed.description
            alignment = self.score_alignment(description)
            if alignment.score < self.goal_acceptance_threshold:
                return {
                    "goal": "declined",
                    "alignment": alignment.as_dict(),
                }
            # The goal id comes from the event, so a re-executed batch creates the same goal.
            goal_id = proposed.id or f"g-{id_digest(event.event_id, 'goal')}"
            goal = self.create_goal({"description": description, "id": goal_id})
            return {"goal": "accepted", "goal_id": goal.id, "alignment": alignment.as_dict()}
        return super().on_event(event)

    @classmethod
    def check_event(cls, event: Event) -> None:
        proposed_goal(event)
        super().check_event(event)


def proposed_goal(event: Event) -> GoalCreate | None:
    """The goal a ``goal.proposed`` event proposes (``data``: ``description``, optional ``id``),
    or ``None`` for other events; ``InvalidInputError`` naming ``data`` fields if it could never
    become a goal (no description, one too long, a bad id)."""
    data = event.data
    if event.type != "goal.proposed" or not isinstance(data, dict):
        return None
    fields = {"description": data.get("description")}
    if data.get("id") is not None:
        fields["id"] = data["id"]
    return within_data(lambda: parse(GoalCreate, fields, what="proposed goal"))
