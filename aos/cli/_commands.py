"""The ``aos`` commands: each a plain typed function over ``AosClient``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer

from aos.cli._output import Output, Printer, default_output
from aos.client import AosClient, TurnResource
from aos.client._calls import RecordKind
from aos.client._config import KEY_VARIABLE, URL_VARIABLE
from aos.domain.models import GoalStatus

HELP = """Script AOS, the host of perpetual agents, from a terminal.

Talks to the AOS HTTP API at --url (or AOS_URL; default http://localhost:7071, where `make run`
serves). In Azure, pass a function key with --key (or AOS_FUNCTION_KEY).

Output is a table in a terminal and JSON when piped; -o chooses.
"""

EXIT_CODES = """Exit codes: 0 done; 1 any other error; 2 wrong usage; 3 invalid input;
4 not found; 5 conflict; 6 limit exceeded; 7 unavailable (storage, network, or health
degraded); 8 function key missing or rejected; 9 busy (too many turns waiting); 10 the turn
failed or did not finish in time."""
TURN_FAILED = 10
"""The exit code of ``aos agents ask`` when the turn failed (and, via ``aos.cli.EXIT_CODES``,
when it did not finish within --timeout)."""

app = typer.Typer(
    name="aos",
    help=HELP,
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
agents_app = typer.Typer(
    help="Register, list, show, change and delete agents.", no_args_is_help=True
)
goals_app = typer.Typer(help="An agent's goals: list, add, update, remove.", no_args_is_help=True)
events_app = typer.Typer(
    help="Queue events: for one agent (send) or for every subscriber (publish).",
    no_args_is_help=True,
)
dead_app = typer.Typer(
    help="Messages the queue could not deliver: list them, replay them.", no_args_is_help=True
)
app.add_typer(agents_app, name="agents")
app.add_typer(goals_app, name="goals")
app.add_typer(events_app, name="events")
turns_app = typer.Typer(
    help="An agent's turns (what a message started): show one, approve or refuse its tool call.",
    no_args_is_help=True,
)
reminders_app = typer.Typer(help="An agent's reminders: list, set, cancel.", no_args_is_help=True)
app.add_typer(dead_app, name="deadletters")
app.add_typer(turns_app, name="turns")
app.add_typer(reminders_app, name="reminders")


@dataclass
class Session:
    url: str | None
    key: str | None
    output: Output

    @contextmanager
    def client(self) -> Iterator[AosClient]:
        with AosClient(self.url, function_key=self.key) as client:
            yield client

    @property
    def out(self) -> Printer:
        return Printer(self.output)


def _session(ctx: typer.Context) -> Session:
    session = ctx.find_root().obj
    assert isinstance(session, Session)
    return session


@app.callback()
def _root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar=URL_VARIABLE,
            help="The AOS app, e.g. https://<app>.azurewebsites.net [default: http://localhost:7071]",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            envvar=KEY_VARIABLE,
            help="Function key, sent as x-functions-key (needed in Azure, not locally).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Output | None,
        typer.Option(
            "--output",
            "-o",
            help="table or json [default: table in a terminal, json when piped]",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = Session(url, key, output or default_output())


# ---------------------------------------------------------------------------------- agents
PageSize = Annotated[
    int | None, typer.Option("--page-size", min=1, max=200, help="Agents fetched per request.")
]


@agents_app.command("list")
def agents_list(ctx: typer.Context, page_size: PageSize = None) -> None:
    """List every registered agent (all pages)."""
    session = _session(ctx)
    with session.client() as aos:
        session.out.agents(aos.list_agents(page_size=page_size))


@agents_app.command("show")
def agents_show(
    ctx: typer.Context, agent_id: Annotated[str, typer.Argument(help="The agent's id.")]
) -> None:
    """Show an agent's context: spec, goals, counters, state."""
    session = _session(ctx)
    with session.client() as aos:
        session.out.context(aos.get_agent(agent_id))


SpecFile = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        exists=True,
        dir_okay=False,
        help="Read the spec from a JSON or YAML file (options given here override it).",
    ),
]
Purpose = Annotated[str | None, typer.Option(help="What the agent is for.")]
Scope = Annotated[str | None, typer.Option("--scope", help="What is in its scope.")]
Criteria = Annotated[
    list[str] | None,
    typer.Option("--criterion", help="A success criterion (repeat for several)."),
]
Subscriptions = Annotated[
    list[str] | None,
    typer.Option("--subscribe", help="An event type to receive from publish (repeat)."),
]
Adapter = Annotated[str | None, typer.Option("--adapter", help="The adapter name.")]
Approvals = Annotated[
    list[str] | None,
    typer.Option(
        "--requires-approval",
        help="A tool whose calls wait for someone's approval, e.g. send (repeat).",
    ),
]


@agents_app.command("register")
def agents_register(
    ctx: typer.Context,
    agent_id: Annotated[
        str | None, typer.Argument(help="The new agent's id (or agent_id in --file).")
    ] = None,
    file: SpecFile = None,
    purpose: Purpose = None,
    kind: Annotated[str | None, typer.Option(help="Agent kind, e.g. generic, leadership.")] = None,
    scope: Scope = None,
    criterion: Criteria = None,
    subscribe: Subscriptions = None,
    adapter: Adapter = None,
    requires_approval: Approvals = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Create or replace (PUT) instead of failing if it exists."),
    ] = False,
) -> None:
    """Register an agent, from options or a spec file.

    aos agents register cfo --purpose "Keep the company financially healthy" --subscribe invoice.paid
    """
    spec: dict[str, Any] = _read_spec(file) if file else {}
    given = {
        "agent_id": agent_id,
        "kind": kind,
        "purpose": purpose,
        "purpose_scope": scope,
        "success_criteria": criterion,
        "subscriptions": subscribe,
        "adapter_name": adapter,
        "requires_approval": requires_approval,
    }
    spec.update({k: v for k, v in given.items() if v is not None})
    if not spec.get("agent_id"):
        raise typer.BadParameter(
            "give the agent's id, or agent_id in --file", param_hint="AGENT_ID"
        )
    session = _session(ctx)
    with session.client() as aos:
        agent_id = spec["agent_id"]
        resource = aos.put_agent(agent_id, spec) if replace else aos.register_agent(spec)
    session.out.record(resource, title=f"Agent {resource.agent_id}")


@agents_app.command("update")
def agents_update(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent's id.")],
    purpose: Purpose = None,
    scope: Scope = None,
    criterion: Criteria = None,
    subscribe: Subscriptions = None,
    adapter: Adapter = None,
    requires_approval: Approvals = None,
) -> None:
    """Change an agent's purpose, scope, criteria, subscriptions, adapter or the tools that need
    approval (only those given; repeated options replace the whole list)."""
    changes = {
        "purpose": purpose,
        "purpose_scope": scope,
        "success_criteria": criterion,
        "subscriptions": subscribe,
        "adapter_name": adapter,
        "requires_approval": requires_approval,
    }
    session = _session(ctx)
    with session.client() as aos:
        resource = aos.update_agent(agent_id, {k: v for k, v in changes.items() if v is not None})
    session.out.record(resource, title=f"Agent {resource.agent_id}")


@agents_app.command("delete")
def agents_delete(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent's id.")],
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Also delete its history and receipts (in the background; else retention does).",
        ),
    ] = False,
) -> None:
    """Deregister an agent. Its history stays readable until purged."""
    session = _session(ctx)
    with session.client() as aos:
        aos.delete_agent(agent_id, purge=purge)
    _done(session, {"agent_id": agent_id, "status": "deleted"}, f"Deleted agent {agent_id}.")


AgentArg = Annotated[str, typer.Argument(help="The agent's id.")]
GoalArg = Annotated[str, typer.Argument(help="The goal's id.")]
TurnArg = Annotated[str, typer.Argument(help="The turn's id (turn-…, as `aos agents ask` shows).")]


@agents_app.command("purge-status")
def agents_purge_status(ctx: typer.Context, agent_id: AgentArg) -> None:
    """Show how far the purge of an agent (`aos agents delete --purge`) has got."""
    session = _session(ctx)
    with session.client() as aos:
        job = aos.get_purge(agent_id)
    session.out.record(job, title=f"Purge of {job.agent_id}: {job.status}")


@agents_app.command("ask")
def agents_ask(
    ctx: typer.Context,
    agent_id: AgentArg,
    message: Annotated[str, typer.Argument(help="What to say (1 to 16000 characters).")],
    message_id: Annotated[
        str | None,
        typer.Option("--message-id", help="The message's id; the same id twice is one turn."),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Only queue the message; print the turn's id.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0.0, help="Seconds to wait for the turn (exit 10 after).")
    ] = 60.0,
) -> None:
    """Say something to an agent and print its reply (the whole turn with -o json).

    The agent thinks (a turn: its model, its tools) and answers. Exit code 10 when the turn
    failed or did not finish within --timeout. A turn that waits for a tool call to be
    approved prints the call and the `aos turns approve` command that lets it go on.

    aos agents ask support "How many tickets are open?"
    """
    session = _session(ctx)
    with session.client() as aos:
        if no_wait:
            accepted = aos.send_message(agent_id, message, message_id=message_id)
            session.out.record(accepted, title="Queued")
            if session.output is Output.table:
                session.out.message(f"Follow it: aos turns show {agent_id} {accepted.turn_id}")
            return
        turn = aos.ask(agent_id, message, message_id=message_id, timeout=timeout)
    _answer(session, turn)


def _answer(session: Session, turn: TurnResource) -> None:
    """A settled turn: the reply (table) or the turn (json); a failed one exits 10."""
    if session.output is Output.json:
        session.out.json(turn)
    elif turn.status == "completed":
        print(turn.reply or "", flush=True)
    elif turn.status == "waiting_approval":
        session.out.turn(turn)
    if turn.status == "waiting_approval" and turn.waiting_for is not None:
        pending = turn.waiting_for
        where = f"{turn.agent_id} {turn.turn_id}"
        print(
            f"Turn {turn.turn_id} waits for approval to call {pending.name}({pending.arguments}).\n"
            f"  approve: aos turns approve {where}\n"
            f"  refuse:  aos turns approve {where} --refuse --reason '...'",
            file=sys.stderr if session.output is Output.json else sys.stdout,
            flush=True,
        )
    if turn.status == "failed":
        print(f"aos: error: turn {turn.turn_id} failed: {turn.error}", file=sys.stderr)
        raise typer.Exit(TURN_FAILED)


# ---------------------------------------------------------------------------------- turns
@turns_app.command("show")
def turns_show(ctx: typer.Context, agent_id: AgentArg, turn_id: TurnArg) -> None:
    """Show a turn: status, reply or error, tool calls, usage, or the call it waits on."""
    session = _session(ctx)
    with session.client() as aos:
        session.out.turn(aos.get_turn(agent_id, turn_id))


@turns_app.command("approve")
def turns_approve(
    ctx: typer.Context,
    agent_id: AgentArg,
    turn_id: TurnArg,
    refuse: Annotated[
        bool, typer.Option("--refuse", help="Refuse the tool call instead (the model is told).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (the model reads it).")
    ] = None,
) -> None:
    """Approve (or --refuse) the tool call a turn waits on; exit 5 when it waits for none."""
    session = _session(ctx)
    with session.client() as aos:
        session.out.turn(aos.approve_turn(agent_id, turn_id, not refuse, reason))


# ---------------------------------------------------------------------------------- goals
Progress = Annotated[float | None, typer.Option(min=0.0, max=1.0, help="From 0 to 1.")]


@goals_app.command("list")
def goals_list(ctx: typer.Context, agent_id: AgentArg) -> None:
    """List an agent's goals."""
    session = _session(ctx)
    with session.client() as aos:
        session.out.goals(aos.list_goals(agent_id))


@goals_app.command("add")
def goals_add(
    ctx: typer.Context,
    agent_id: AgentArg,
    description: Annotated[str, typer.Argument(help="What the goal is.")],
    goal_id: Annotated[
        str | None, typer.Option("--id", help="The goal's id (else one is made).")
    ] = None,
    status: Annotated[GoalStatus | None, typer.Option(help="Initial status.")] = None,
    progress: Progress = None,
) -> None:
    """Add a goal to an agent."""
    fields = {"id": goal_id, "description": description, "status": status, "progress": progress}
    session = _session(ctx)
    with session.client() as aos:
        goal = aos.add_goal(agent_id, {k: v for k, v in fields.items() if v is not None})
    session.out.record(goal, title=f"Goal {goal.id}")


@goals_app.command("update")
def goals_update(
    ctx: typer.Context,
    agent_id: AgentArg,
    goal_id: GoalArg,
    status: Annotated[GoalStatus | None, typer.Option(help="New status.")] = None,
    progress: Progress = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
) -> None:
    """Change a goal's status, progress or description."""
    fields = {"status": status, "progress": progress, "description": description}
    session = _session(ctx)
    with session.client() as aos:
        goal = aos.update_goal(
            agent_id, goal_id, {k: v for k, v in fields.items() if v is not None}
        )
    session.out.record(goal, title=f"Goal {goal.id}")


@goals_app.command("remove")
def goals_remove(ctx: typer.Context, agent_id: AgentArg, goal_id: GoalArg) -> None:
    """Remove a goal."""
    session = _session(ctx)
    with session.client() as aos:
        aos.remove_goal(agent_id, goal_id)
    body = {"agent_id": agent_id, "goal_id": goal_id, "status": "removed"}
    _done(session, body, f"Removed goal {goal_id} of {agent_id}.")


# ---------------------------------------------------------------------------------- events
EventType = Annotated[str, typer.Argument(help="The event type, e.g. invoice.paid.")]
Data = Annotated[
    str | None,
    typer.Option("--data", "-d", help="The event data as JSON, e.g. '{\"amount\": 10}'."),
]
EventIdOption = Annotated[
    str | None,
    typer.Option("--id", help="The event id; repeating it is safe (else one is made)."),
]
Source = Annotated[str | None, typer.Option(help="Who sends it.")]
Correlation = Annotated[
    str | None, typer.Option("--correlation-id", help="Follows the event through the queue.")
]


def _event(
    event_type: str, data: str | None, event_id: str | None, source: str | None
) -> dict[str, Any]:
    event: dict[str, Any] = {"type": event_type}
    if data is not None:
        try:
            event["data"] = json.loads(data)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--data") from exc
    if event_id is not None:
        event["event_id"] = event_id
    if source is not None:
        event["source"] = source
    return event


@events_app.command("send")
def events_send(
    ctx: typer.Context,
    agent_id: AgentArg,
    event_type: EventType,
    data: Data = None,
    event_id: EventIdOption = None,
    source: Source = None,
    correlation_id: Correlation = None,
) -> None:
    """Queue an event for one agent.

    aos events send cfo invoice.paid --data '{"amount": 1200}' --id inv-1001
    """
    session = _session(ctx)
    with session.client() as aos:
        accepted = aos.send_event(
            agent_id, _event(event_type, data, event_id, source), correlation_id=correlation_id
        )
    session.out.record(accepted, title="Queued")


@events_app.command("publish")
def events_publish(
    ctx: typer.Context,
    event_type: EventType,
    data: Data = None,
    event_id: EventIdOption = None,
    source: Source = None,
    correlation_id: Correlation = None,
) -> None:
    """Queue an event for every agent subscribed to its type."""
    session = _session(ctx)
    with session.client() as aos:
        accepted = aos.publish_event(
            _event(event_type, data, event_id, source), correlation_id=correlation_id
        )
    session.out.record(accepted, title="Published")


# ---------------------------------------------------------------------------------- reminders
ReminderArg = Annotated[
    str, typer.Argument(help="The reminder's id (setting it again replaces it).")
]


@reminders_app.command("list")
def reminders_list(ctx: typer.Context, agent_id: AgentArg) -> None:
    """List an agent's active reminders, with when each fires next."""
    session = _session(ctx)
    with session.client() as aos:
        session.out.reminders(aos.list_reminders(agent_id))


@reminders_app.command("set")
def reminders_set(
    ctx: typer.Context,
    agent_id: AgentArg,
    reminder_id: ReminderArg,
    event_type: Annotated[
        str, typer.Option("--type", help="The event type it sends the agent, e.g. review.due.")
    ],
    data: Data = None,
    at: Annotated[str | None, typer.Option(help="First at this time (ISO 8601).")] = None,
    after: Annotated[
        float | None, typer.Option("--after", min=0.0, help="First after this many seconds.")
    ] = None,
    every: Annotated[
        int | None, typer.Option("--every", min=1, help="Then again every this many seconds.")
    ] = None,
) -> None:
    """Set (or replace) a reminder: an event the agent receives --at a time or --after a delay,
    and --every so often.

    aos reminders set support weekly --type review.due --after 3600 --every 604800
    """
    reminder = _event(event_type, data, None, None)
    fields = {"at": at, "after_seconds": after, "every_seconds": every}
    reminder.update({k: v for k, v in fields.items() if v is not None})
    session = _session(ctx)
    with session.client() as aos:
        answer = aos.set_reminder(agent_id, reminder_id, reminder)
    session.out.record(answer, title=f"Reminder {answer.reminder_id}")


@reminders_app.command("cancel")
def reminders_cancel(ctx: typer.Context, agent_id: AgentArg, reminder_id: ReminderArg) -> None:
    """Cancel a reminder: it never fires again (exit 4 if there is none)."""
    session = _session(ctx)
    with session.client() as aos:
        aos.cancel_reminder(agent_id, reminder_id)
    body = {"agent_id": agent_id, "reminder_id": reminder_id, "status": "cancelled"}
    _done(session, body, f"Cancelled reminder {reminder_id} of {agent_id}.")


# ---------------------------------------------------------------------------------- history
class Kind(StrEnum):
    event = "event"
    decision = "decision"
    failure = "failure"


KINDS: dict[Kind, RecordKind] = {k: k.value for k in Kind}


@app.command("history")
def history(
    ctx: typer.Context,
    agent_id: AgentArg,
    limit: Annotated[int, typer.Option(min=1, help="How many of the newest records.")] = 20,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only these types (comma-separated).")
    ] = None,
    kind: Annotated[
        Kind | None, typer.Option(help="Only events, decisions, or failed events.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Recorded at or after (ISO 8601, e.g. 2026-01-31T09:00Z).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Recorded before (ISO 8601).")] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-F", help="Then print new records as they arrive, until Ctrl-C."),
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, help="With --follow: seconds between polls.")
    ] = 1.0,
) -> None:
    """An agent's handled events and decisions, newest first.

    With --follow, the newest --limit records oldest first, then each new one as it is archived
    (one JSON object a line when piped).
    """
    session = _session(ctx)
    kind_name = KINDS[kind] if kind else None
    with session.client() as aos:
        records = aos.list_history(
            agent_id,
            page_size=min(limit, 1000),
            types=event_type,
            kind=kind_name,
            since=since,
            until=until,
        )
        newest = list(islice(records, limit))
        if not follow:
            session.out.history(newest)
            return
        for item in reversed(newest):
            session.out.history_line(item)
        after = newest[0].sequence if newest else aos.latest_sequence(agent_id)
        for item in aos.follow_history(
            agent_id, after=after, poll_interval=interval, types=event_type, kind=kind_name
        ):
            session.out.history_line(item)


# ---------------------------------------------------------------------------------- more
@app.command("alignment")
def alignment(
    ctx: typer.Context,
    agent_id: AgentArg,
    action: Annotated[str, typer.Argument(help="The action, as text or JSON.")],
) -> None:
    """Score an action against an agent's purpose (0 to 1, with reasons)."""
    try:
        value: Any = json.loads(action)
    except json.JSONDecodeError:
        value = action
    session = _session(ctx)
    with session.client() as aos:
        session.out.record(aos.evaluate_alignment(agent_id, value), title="Alignment")


@app.command("health")
def health(ctx: typer.Context) -> None:
    """Is the app up and its storage reachable? Exit code 7 when degraded."""
    session = _session(ctx)
    with session.client() as aos:
        answer = aos.health()
    session.out.record(answer, title="Health")
    if answer.status != "ok":
        raise typer.Exit(7)


# ---------------------------------------------------------------------------------- dead letters
Poison = Annotated[
    bool,
    typer.Option(
        "--poison", help="The poison queue (failed every retry) instead of the dead letters."
    ),
]


@dead_app.command("list")
def deadletters_list(
    ctx: typer.Context,
    poison: Poison = False,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
) -> None:
    """List undeliverable messages, with the reason and the original."""
    session = _session(ctx)
    with session.client() as aos:
        items = aos.list_dead_letters(poison=poison, page_size=min(limit or 100, 100))
        session.out.dead_letters(islice(items, limit))


@dead_app.command("replay")
def deadletters_replay(
    ctx: typer.Context,
    letter_id: Annotated[str, typer.Argument(help="The id shown by `aos deadletters list`.")],
    poison: Poison = False,
) -> None:
    """Put a message back on the events queue (after fixing what made it fail)."""
    session = _session(ctx)
    with session.client() as aos:
        session.out.record(aos.replay_dead_letter(letter_id, poison=poison), title="Replayed")


# ---------------------------------------------------------------------------------- helpers
def _done(session: Session, body: dict[str, Any], text: str) -> None:
    if session.output is Output.json:
        session.out.json(body)
    else:
        session.out.message(text)


def _read_spec(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]  # only for YAML specs
        except ImportError as exc:
            raise typer.BadParameter("YAML specs need PyYAML", param_hint="--file") from exc
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise typer.BadParameter(f"{path}: {exc}", param_hint="--file") from exc
    else:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"{path}: {exc}", param_hint="--file") from exc
    if not isinstance(spec, dict):
        raise typer.BadParameter(f"{path}: not a mapping of spec fields", param_hint="--file")
    return spec
