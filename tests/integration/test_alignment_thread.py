"""Alignment scoring is CPU work: the HTTP route runs it off the event loop's thread."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import pytest
from harness import running_aos

from aos import AgentKinds
from aos.agents.kinds import GenericPurposeDrivenAgent
from aos.alignment import AlignmentResult, LexicalAlignmentScorer, PurposeProfile
from devhost import Azurite
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.asyncio


class RecordingScorer(LexicalAlignmentScorer):
    threads: ClassVar[list[int]] = []

    def score(self, action: Any, profile: PurposeProfile) -> AlignmentResult:
        self.threads.append(threading.get_ident())
        return super().score(action, profile)


class RecordedAgent(GenericPurposeDrivenAgent):
    kind: ClassVar[str] = "recorded"
    scorer = RecordingScorer()


async def test_scoring_runs_off_the_event_loop(azurite: Azurite, unique_name: UniqueName) -> None:
    kinds = AgentKinds.builtin()
    kinds.register(RecordedAgent)
    async with running_aos(azurite.connection_string, unique_name, kinds=kinds) as aos:
        await aos.register("r1", kind="recorded")
        RecordingScorer.threads.clear()
        action = "grow revenue " * 5000  # a 64 KB action
        response = await aos.call("POST", "agents/r1/alignment", {"action": action})
        assert response.status == 200, response.text
        assert RecordingScorer.threads
        assert threading.get_ident() not in RecordingScorer.threads
