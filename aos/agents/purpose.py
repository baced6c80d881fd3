"""``PurposeDrivenAgent``: an agent that measures what it does against why it exists.

Alignment goes through an ``AlignmentScorer`` (``LexicalAlignmentScorer`` unless a subclass or
instance says otherwise), so a model-backed scorer can be dropped in without changing agents.
Decisions score every option, choose the best aligned one, and are recorded: in the entity's
bounded window and, once per ``decision_id``, in the counters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import JsonValue

from aos.agents.base import PerpetualAgent
from aos.agents.judgement import Judge, judge_alignment, judge_options
from aos.alignment import AlignmentResult, AlignmentScorer, LexicalAlignmentScorer, PurposeProfile
from aos.domain.document import id_digest, truncate_escaped
from aos.domain.models import (
    Decision,
    DecisionRequest,
    DecisionSummary,
    Event,
    Goal,
    GoalCreate,
    GoalStatus,
    GoalUpdate,
    format_timestamp,
    new_id,
    utc_now,
)
from aos.domain.validation import parse, within_data
from aos.errors import ConflictError, GoalNotFoundError, LimitExceededError

__all__ = ["PurposeDrivenAgent", "decision_request"]

_ACTIVE = (GoalStatus.PENDING, GoalStatus.IN_PROGRESS)
RATIONALE_BYTES = 300
"""A decision's rationale as kept in the entity's window: at most this many bytes of state."""


class PurposeDrivenAgent(PerpetualAgent):
    """Purpose, scope, success criteria and goals, with alignment scoring and decisions.

    Events whose ``data`` carries an ``options`` list are decision requests: the agent decides and
    the decision is the event's result. Everything else is recorded as the base agent does.
    """

    kind: ClassVar[str] = "purpose-driven"
    scorer: AlignmentScorer = LexicalAlignmentScorer()
    model: Judge | None = None
    """The language model the seed's async API judges with (``evaluate_purpose_alignment``,
    ``make_purpose_driven_decision``); ``None``: the lexical scorer, which is also the fallback
    whenever the model gives no usable answer. ``AgentManager(model=...)`` sets it."""

    # ------------------------------------------------------------------------------ alignment
    def profile(self) -> PurposeProfile:
        spec = self.spec
        return PurposeProfile(
            purpose=spec.purpose,
            purpose_scope=spec.purpose_scope,
            success_criteria=spec.success_criteria,
            goals=tuple(g.description for g in self.context.goals if g.status in _ACTIVE),
        )

    def score_alignment(self, action: Any) -> AlignmentResult:
        """Score an action (text or JSON) against purpose, scope, criteria and active goals."""
        return self.scorer.score(action, self.profile())

    async def evaluate_purpose_alignment(self, action: Any) -> float:
        """The seed's API: the alignment score alone, in [0, 1] -- the model's when the agent
        has one that answers, else the lexical scorer's."""
        if self.model is not None:
            judged = await judge_alignment(self.model, self.profile(), action)
            if judged is not None:
                return judged.score
        return self.score_alignment(action).score

    # ------------------------------------------------------------------------------ decisions
    def decide(
        self,
        request: DecisionRequest | Mapping[str, Any],
        *,
        judged: tuple[tuple[float, ...], str] | None = None,
    ) -> Decision:
        """Choose the option best aligned with the purpose (ties go to the earlier option):
        by the scorer, or by ``judged`` (scores per option and why, from the agent's model).

        The same ``decision_id`` always yields the same choice; it is recorded only once.
        """
        request = parse(DecisionRequest, request, what="decision request")
        if judged is not None:
            scores, why = judged
        else:
            profile = self.profile()
            results = [self.scorer.score(option, profile) for option in request.options]
            scores = tuple(r.score for r in results)
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        if judged is None:
            why = "; ".join(results[best].reasons[:2])
        counters = self.context.counters
        digest = id_digest(request.decision_id, "decision")
        duplicate = self.document.has_processed(digest)
        decision = Decision(
            decision_id=request.decision_id,
            context=request.context,
            options=tuple(request.options),
            scores=scores,
            chosen_index=best,
            chosen=request.options[best],
            rationale=f"option {best + 1} of {len(scores)} is best aligned ({scores[best]:.2f}): {why}",
            decided_at=utc_now(),
            sequence=counters.decisions_made + (0 if duplicate else 1),
        )
        if not duplicate:
            self.document = self.document.with_decision(
                _summarize_decision(decision, self.limits.event_preview_bytes), digest, self.limits
            )
            recorded_at = format_timestamp(decision.decided_at)
            self._journal("decision", decision.decision_id, "decision", recorded_at, decision)
        return decision

    async def make_purpose_driven_decision(
        self, context: DecisionRequest | Mapping[str, Any]
    ) -> Decision:
        """The seed's API: ``context`` carries ``options`` (and optionally ``context`` and
        ``decision_id``); the decision is recorded and the context saved. With a model, the
        model scores the options (the scorer does when it gives no usable answer)."""
        request = parse(DecisionRequest, context, what="decision request")
        judged = None
        if self.model is not None:
            judged = await judge_options(self.model, self.profile(), request.options)
        decision = self.decide(request, judged=judged)
        await self.save_state()
        return decision

    def on_event(self, event: Event) -> JsonValue:
        request = decision_request(event)
        if request is not None:
            return self.decide(request).model_dump(mode="json")
        return None

    @classmethod
    def check_event(cls, event: Event) -> None:
        decision_request(event)
        super().check_event(event)

    # ------------------------------------------------------------------------------ goals
    def create_goal(self, goal: GoalCreate | Mapping[str, Any]) -> Goal:
        """Add a goal. Re-adding the same id with the same description returns the existing goal,
        so a retried request does not fail or duplicate."""
        goal = parse(GoalCreate, goal, what="goal")
        goals = self.context.goals
        if goal.id is not None and (existing := self.context.goal(goal.id)) is not None:
            if existing.description == goal.description:
                return existing
            raise ConflictError(f"Goal {goal.id!r} exists with a different description")
        if len(goals) >= self.limits.max_goals:
            raise LimitExceededError(
                f"an agent has at most {self.limits.max_goals} goals (AOS_MAX_GOALS)"
            )
        now = utc_now()
        created = Goal(
            **goal.model_dump(exclude={"id"}),
            id=goal.id or new_id(),
            created_at=now,
            updated_at=now,
        )
        self.document = self.document.replace(self.limits, goals=(*goals, created))
        return created

    def change_goal(self, update: GoalUpdate | Mapping[str, Any]) -> Goal:
        update = parse(GoalUpdate, update, what="goal update")
        current = self.context.goal(update.id)
        if current is None:
            raise GoalNotFoundError(update.id)
        changes = update.changes()
        if changes.get("status") == GoalStatus.ACHIEVED and "progress" not in changes:
            changes["progress"] = 1.0
        changed = Goal.model_validate({**current.model_dump(), **changes, "updated_at": utc_now()})
        goals = tuple(changed if g.id == update.id else g for g in self.context.goals)
        self.document = self.document.replace(self.limits, goals=goals)
        return changed

    def delete_goal(self, goal_id: str) -> Goal:
        current = self.context.goal(goal_id)
        if current is None:
            raise GoalNotFoundError(goal_id)
        goals = tuple(g for g in self.context.goals if g.id != goal_id)
        self.document = self.document.replace(self.limits, goals=goals)
        return current

    async def add_goal(self, description: str, **fields: Any) -> str:
        """The seed's API: add a goal and return its id."""
        goal = self.create_goal({"description": description, **fields})
        await self.save_state()
        return goal.id

    async def get_goals(self, status: GoalStatus | str | None = None) -> list[Goal]:
        goals = self.context.goals
        return [g for g in goals if status is None or g.status == status]

    async def update_goal(self, goal_id: str, **changes: Any) -> Goal:
        goal = self.change_goal({"id": goal_id, **changes})
        await self.save_state()
        return goal

    async def remove_goal(self, goal_id: str) -> Goal:
        goal = self.delete_goal(goal_id)
        await self.save_state()
        return goal


def decision_request(event: Event) -> DecisionRequest | None:
    """The decision an event asks for (its ``data`` has an ``options`` list), or ``None``.
    ``InvalidInputError`` naming ``data`` fields if the request could never be decided (no
    options, too many, a context that is not JSON)."""
    data = event.data
    if not (isinstance(data, dict) and isinstance(data.get("options"), list)):
        return None
    request = {
        "decision_id": event.event_id,
        "options": data["options"],
        "context": {k: v for k, v in data.items() if k != "options"},
    }
    return within_data(lambda: parse(DecisionRequest, request, what="decision request"))


def _summarize_decision(decision: Decision, preview_bytes: int) -> DecisionSummary:
    small = len(json.dumps(decision.chosen)) <= preview_bytes
    return DecisionSummary(
        decision_id=decision.decision_id,
        chosen=decision.chosen if small else None,
        score=decision.scores[decision.chosen_index],
        rationale=truncate_escaped(decision.rationale, RATIONALE_BYTES),
        decided_at=decision.decided_at,
    )
