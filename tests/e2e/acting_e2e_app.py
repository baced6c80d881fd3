"""The AOS app (as function_app.py builds it) with agent kinds that act -- send, publish -- for
`test_e2e_acting.py`, which runs it under `python -m devhost --app acting_e2e_app`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import JsonValue

from aos import AgentKinds, Event, LeadershipAgent, PerpetualAgent, create_app


class DelegatingLeader(LeadershipAgent):
    """Vets a proposed goal like any leader, then delegates it to ``data.delegate_to``."""

    kind: ClassVar[str] = "delegating-leader"

    def on_event(self, event: Event) -> JsonValue:
        result = super().on_event(event)
        data = event.data if isinstance(event.data, dict) else {}
        if event.type == "goal.proposed" and isinstance(data.get("delegate_to"), str):
            self.send(data["delegate_to"], "goal.proposed", {"description": data["description"]})
        return result


class Herald(PerpetualAgent):
    """Publishes ``news`` for every ``announce`` it receives."""

    kind: ClassVar[str] = "herald"

    def on_event(self, event: Event) -> JsonValue:
        if event.type == "announce":
            self.publish("news", event.data)
        return None


class Echo(PerpetualAgent):
    """Answers every ``ping`` with a ``ping`` back to its sender: forever, but for the hop limit."""

    kind: ClassVar[str] = "echo"

    def on_event(self, event: Event) -> JsonValue:
        if event.type == "ping" and event.source:
            self.send(event.source, "ping")
        return None


class Sleeper(PerpetualAgent):
    """Sets and cancels reminders as its events say; counts its wake-ups, and with ``data.stop``
    on its reminder cancels it after that many."""

    kind: ClassVar[str] = "sleeper"

    def on_event(self, event: Event) -> JsonValue:
        data = event.data if isinstance(event.data, dict) else {}
        if event.type == "remind":
            self.remind(
                data["id"], type="wake", data={"id": data["id"], "stop": data.get("stop")},
                after=data.get("after"), every=data.get("every"),
            )  # fmt: skip
        elif event.type == "cancel":
            self.cancel_reminder(data["id"])
        elif event.type == "wake":
            wakes = int(self.get_state_value("wakes", 0)) + 1
            self.set_state_value("wakes", wakes)
            if data.get("stop") is not None and wakes >= int(data["stop"]):
                self.cancel_reminder(data["id"])
        return None


kinds = AgentKinds.builtin()
for agent_class in (DelegatingLeader, Herald, Echo, Sleeper):
    kinds.register(agent_class)
app = create_app(kinds)
