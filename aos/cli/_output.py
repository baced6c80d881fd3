"""How the command line shows answers: Rich tables for people, JSON for pipes and scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from aos.api.schemas import AgentDetail, AgentResource, HistoryItem, TurnResource
from aos.client import DeadLetterItem
from aos.domain.models import Goal, Reminder


class Output(StrEnum):
    table = "table"
    json = "json"


def default_output() -> Output:
    """A table in a terminal, JSON when the output is piped or redirected."""
    return Output.table if sys.stdout.isatty() else Output.json


def plain(value: Any) -> Any:
    """JSON-ready data from models, lists of models, or plain data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class Printer:
    def __init__(self, output: Output) -> None:
        self.output = output
        self.console = Console(soft_wrap=False, highlight=False)

    def json(self, value: Any) -> None:
        print(json.dumps(plain(value), indent=2, ensure_ascii=False), flush=True)

    def json_line(self, value: Any) -> None:
        print(json.dumps(plain(value), ensure_ascii=False), flush=True)

    # ------------------------------------------------------------------ one object
    def record(self, value: BaseModel | dict[str, Any], title: str | None = None) -> None:
        """Anything as a two-column table of its top-level fields (JSON for nested ones)."""
        if self.output is Output.json:
            return self.json(value)
        data = plain(value)
        table = Table(title=title, show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for name, item in data.items():
            table.add_row(name, _cell(item))
        self.console.print(table)
        return None

    def message(self, text: str) -> None:
        """A line for people in table mode (JSON mode prints the answer instead)."""
        self.console.print(text)

    # ------------------------------------------------------------------ lists
    def rows(
        self,
        items: Iterable[Any],
        columns: Sequence[str],
        title: str,
    ) -> None:
        values = list(items)
        if self.output is Output.json:
            return self.json(values)
        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for item in values:
            data = plain(item)
            table.add_row(*(_cell(_get(data, c)) for c in columns))
        self.console.print(table)
        if not values:
            self.console.print("(none)")
        return None

    def agents(self, items: Iterable[AgentResource]) -> None:
        self.rows(items, ["agent_id", "kind", "status", "purpose", "subscriptions"], "Agents")

    def goals(self, items: Iterable[Goal]) -> None:
        self.rows(items, ["id", "status", "progress", "description"], "Goals")

    def history(self, items: Iterable[HistoryItem]) -> None:
        columns = ["sequence", "recorded_at", "kind", "type", "event_id"]
        self.rows(items, columns, "History (newest first)")

    def dead_letters(self, items: Iterable[DeadLetterItem]) -> None:
        columns = ["id", "queue", "dead_lettered_at", "agent_id", "type", "event_id", "reason"]
        self.rows(items, columns, "Dead letters")

    def reminders(self, items: Iterable[Reminder]) -> None:
        self.rows(items, ["reminder_id", "type", "due", "every_seconds", "data"], "Reminders")

    def turn(self, turn: TurnResource) -> None:
        """A turn's fields (those it has); its tool calls as ``step. name`` lines."""
        if self.output is Output.json:
            return self.json(turn)
        data = turn.model_dump(mode="json", exclude_none=True)
        if turn.tool_calls:
            data["tool_calls"] = "\n".join(
                f"{c.step}. {c.name}" + (f" (error: {c.error})" if c.error else "")
                for c in turn.tool_calls
            )
        if turn.waiting_for is not None:
            pending = turn.waiting_for
            data["waiting_for"] = f"{pending.name}({pending.arguments}) [id {pending.id}]"
        return self.record(data, title=f"Turn {turn.turn_id}")

    def history_line(self, item: HistoryItem) -> None:
        """One record as it arrives (``history --follow``): a JSON line, or a line of text."""
        if self.output is Output.json:
            return self.json_line(item)
        print(
            f"{item.sequence:>6}  {item.recorded_at}  {item.kind:<8}  {item.type}  "
            f"{item.event_id}  {_cell(_summary(item))}",
            flush=True,
        )
        return None

    def context(self, context: AgentDetail) -> None:
        if self.output is Output.json:
            return self.json(context)
        self.record(
            {
                "agent_id": context.agent_id,
                "kind": context.kind,
                "status": context.status,
                "purpose": context.purpose,
                "purpose_scope": context.purpose_scope,
                "success_criteria": list(context.success_criteria),
                "subscriptions": list(context.subscriptions),
                "events_handled": context.counters.events_handled,
                "events_failed": context.counters.events_failed,
                "decisions_made": context.counters.decisions_made,
                "last_event": context.last_event.event_id if context.last_event else None,
                "state": context.state,
                "last_active_at": context.last_active_at,
                "turn_running": context.turns.active,
                "turns_queued": list(context.turns.queued),
                "turns_completed": context.turns.completed,
                "turns_failed": context.turns.failed,
            },
            title=f"Agent {context.agent_id}",
        )
        if context.goals:
            self.goals(context.goals)
        return None


def _get(data: Any, column: str) -> Any:
    return data.get(column) if isinstance(data, dict) else getattr(data, column, None)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _summary(item: HistoryItem) -> Any:
    payload = item.payload
    if item.kind == "decision":
        return {"chosen": payload.get("chosen")}
    if item.kind == "failure":
        return item.error
    return payload.get("data")
