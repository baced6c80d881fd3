"""The concrete agents AOS ships: ``GenericPurposeDrivenAgent`` and ``LeadershipAgent``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import JsonValue

from aos.agents.purpose import PurposeDrivenAgent
from aos.document import id_digest
from aos.errors import AOSError
from aos.models import Event

__all__ = ["GenericPurposeDrivenAgent", "LeadershipAgent"]


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
        data = event.data
        if event.type == "goal.proposed" and isinstance(data, dict):
            description = data.get("description")
            if not isinstance(description, str) or not description.strip():
                raise AOSError("a goal.proposed event needs data.description (text)")
            alignment = self.score_alignment(description)
            if alignment.score < self.goal_acceptance_threshold:
                return {
                    "goal": "declined",
                    "alignment": alignment.as_dict(),
                }
            # The goal id comes from the event, so a re-executed batch creates the same goal.
            goal_id = data.get("id") or f"g-{id_digest(event.event_id, 'goal')}"
            goal = self.create_goal({"description": description, "id": goal_id})
            return {"goal": "accepted", "goal_id": goal.id, "alignment": alignment.as_dict()}
        return super().on_event(event)
