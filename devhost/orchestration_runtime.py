"""Run Durable orchestrations, activities and timers through the SDK's own orchestrator handle.

The contract is the one the Durable Functions extension has with an out-of-process orchestrator:
the host sends the whole history (`OrchestratorStarted`, `ExecutionStarted`, every `TaskScheduled`,
`TaskCompleted`, `TimerFired`, ... so far), the SDK replays the function from the start against it
and returns *every* action the function has scheduled (replay schema V1: one list per `yield`). The
host applies the actions it has not applied yet, appends their `*Scheduled`/`*Created`/`EventSent`
events to history, and runs the work; each result comes back as a new history event in the
instance's inbox, which wakes the orchestrator for the next episode.

Task ids follow the SDK's counter: each scheduled action takes the next id (waiting for an external
event takes none, `signal_entity` and `continue_as_new` take one), as do the retry timer and the
rescheduled task of `call_*_with_retry`. The SDK allocates those two while it replays the failure
(or the timer), so an episode ends right after such an event: the host then knows the retry id comes
after the ids of the actions the episode scheduled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError
from azure.functions import meta
from azure.functions._durable_functions import OrchestrationContext
from azure.functions.durable_functions import ActivityTriggerConverter

from devhost.app_loader import FunctionSpec
from devhost.errors import DevHostError
from devhost.orchestration_store import (
    INBOX_PREFIX,
    MAX_INBOX_PER_EPISODE,
    InstanceRecord,
    Message,
    OrchestrationStore,
    StoredInstance,
)

__all__ = [
    "InstanceExistsError",
    "OrchestrationRuntime",
    "UnknownOrchestratorError",
    "timestamp",
]

log = logging.getLogger("devhost.orchestrations")

# HistoryEventType values (azure.durable_functions.models.history.HistoryEventType)
EXECUTION_STARTED, EXECUTION_COMPLETED, EXECUTION_TERMINATED = 0, 1, 3
TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 4, 5, 6
SUB_CREATED, SUB_COMPLETED, SUB_FAILED = 7, 8, 9
TIMER_CREATED, TIMER_FIRED = 10, 11
ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED = 12, 13
EVENT_SENT, EVENT_RAISED = 14, 15
EVENT_NAMES = {
    0: "ExecutionStarted",
    1: "ExecutionCompleted",
    2: "ExecutionFailed",
    3: "ExecutionTerminated",
    4: "TaskScheduled",
    5: "TaskCompleted",
    6: "TaskFailed",
    7: "SubOrchestrationInstanceCreated",
    8: "SubOrchestrationInstanceCompleted",
    9: "SubOrchestrationInstanceFailed",
    10: "TimerCreated",
    11: "TimerFired",
    12: "OrchestratorStarted",
    13: "OrchestratorCompleted",
    14: "EventSent",
    15: "EventRaised",
    16: "ContinueAsNew",
}
# ActionType values (azure.durable_functions.models.actions.ActionType)
CALL_ACTIVITY, CALL_ACTIVITY_RETRY, CALL_SUB, CALL_SUB_RETRY = 0, 1, 2, 3
CONTINUE_AS_NEW, CREATE_TIMER, WAIT_EVENT, CALL_ENTITY, CALL_HTTP, SIGNAL_ENTITY = 4, 5, 6, 7, 8, 9

HTTP_ACTIVITY = "BuiltIn::HttpActivity"
TERMINAL = {"Completed", "Failed", "Terminated"}
ACTIVE = {"Pending", "Running", "ContinuedAsNew"}
_OUT_OF_PROC = "\n\n$OutOfProcData$:"
_CALL_NAMESPACE = uuid.UUID("6f1e3c55-8d42-4c2b-9a57-0d6c1b2f4e11")


class UnknownOrchestratorError(DevHostError, LookupError):
    """No orchestrator function is registered under that name."""


class InstanceExistsError(DevHostError):
    """An instance with that id is pending or running (the extension refuses to start it again)."""


def timestamp(when: datetime | None = None) -> str:
    """The timestamp format the SDK writes and parses (DATETIME_STRING_FORMAT)."""
    return (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event(event_type: int, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    return {
        "EventType": event_type,
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": timestamp(),
        **fields,
    }


def _completion_key(event: dict[str, Any]) -> str | None:
    """What a completion event completes; a second completion of the same key is a duplicate."""
    kind = event.get("EventType")
    if kind in (TASK_COMPLETED, TASK_FAILED, SUB_COMPLETED, SUB_FAILED):
        return f"task:{event.get('TaskScheduledId')}"
    if kind == TIMER_FIRED:
        return f"timer:{event.get('TimerId')}"
    if kind == EVENT_RAISED and str(event.get("Name", "")).startswith("call:"):
        return f"call:{event['Name']}"
    return None


@dataclass
class _Instance:
    id: str
    stored: StoredInstance | None = None
    arrived: list[Message] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    failed_attempts: int = 0


ActivityInvoker = Callable[[FunctionSpec, Any], Awaitable[Any]]
EntityMessenger = Callable[[dict[str, Any], list[Any]], Awaitable[None]]
"""(outbox item, staged) -> the message stored for its entity, held; what to release is appended."""


class OrchestrationRuntime:
    """Instances in, episodes out: one episode at a time per instance, bounded overall."""

    def __init__(
        self,
        store: OrchestrationStore,
        functions: list[FunctionSpec],
        *,
        invoke_activity: ActivityInvoker,
        send_to_entity: EntityMessenger,
        release_entity_messages: Callable[[list[Any]], None] = lambda staged: None,
        max_orchestrators: int = 10,
        max_activities: int = 10,
    ) -> None:
        self._store = store
        self.orchestrators: Mapping[str, FunctionSpec] = {
            str(s.trigger.get("orchestration") or s.name): s
            for s in functions
            if s.trigger_type == "orchestrationTrigger"
        }
        self.activities: Mapping[str, FunctionSpec] = {
            str(s.trigger.get("activity") or s.name): s
            for s in functions
            if s.trigger_type == "activityTrigger"
        }
        self._invoke_activity = invoke_activity
        self._send_to_entity = send_to_entity
        self._release_entity_messages = release_entity_messages
        self._recovering = False
        self._orchestrator_slots = asyncio.Semaphore(max(1, max_orchestrators))
        self._activity_slots = asyncio.Semaphore(max(1, max_activities))
        self._instances: dict[str, _Instance] = {}
        self._running_work: set[tuple[str, str, int]] = set()  # (instance, execution, task id)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: dict[tuple[str, str, int], asyncio.TimerHandle] = {}
        self._changed = asyncio.Condition()
        self._stopping = False
        self._status: dict[str, str] = {}  # last committed status, for wait_for
        self.episodes_run = 0
        self.activity_runs = 0
        self.episode_observer: Callable[[dict[str, Any]], None] | None = None  # tests: the JSON

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """`recover` then `resume` (a host with entities starts its entity runtime in between)."""
        await self.recover()
        await self.resume()

    async def recover(self) -> None:
        """Read every instance's status (kept in memory from then on: the host is the only
        writer of its table, so starting an instance checks it without a query), and finish
        delivering every outbox a previous run left, before anything else runs."""
        self._recovering = True
        records = [r async for r in self._store.instance_ids()]
        self._status.update((r.instance_id, r.status) for r in records)
        for instance_id, messages in (await self._store.pending_outboxes()).items():
            for message in messages:
                await self._flush_outbox(instance_id, message)

    async def resume(self) -> None:
        """Resume every unfinished instance: its inbox, activities and timers."""
        self._recovering = False
        active = [i for i, status in self._status.items() if status in ACTIVE]
        if active:
            log.info("resuming %d orchestration instance(s)", len(active))
        sem = asyncio.Semaphore(8)

        async def resume(instance_id: str) -> None:
            async with sem:
                stored = await self._store.load(instance_id)
            if stored is None:
                return
            instance = self._instance(instance_id)
            instance.stored = stored
            self._schedule_work(instance)
            self._kick(instance)

        await asyncio.gather(*(resume(i) for i in active))
        for instance in list(self._instances.values()):
            self._kick(instance)

    async def stop(self) -> None:
        """Stop starting work; let running episodes and activities finish (results are stored)."""
        self._stopping = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        workers = [i.worker for i in self._instances.values() if i.worker is not None]
        await asyncio.gather(*workers, *self._tasks, return_exceptions=True)

    # ----------------------------------------------------------------- client API
    async def start_new(self, name: str, instance_id: str | None, input_text: str | None) -> str:
        """Store a new instance and its ExecutionStarted message; the 202 point."""
        if name not in self.orchestrators:
            raise UnknownOrchestratorError(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
            )
        instance_id = instance_id or uuid.uuid4().hex
        return await self._create(name, instance_id, input_text, parent=None)

    async def _create(
        self,
        name: str,
        instance_id: str,
        input_text: str | None,
        parent: dict[str, Any] | None,
    ) -> str:
        known = self._status.get(instance_id)
        if known in ACTIVE:
            raise InstanceExistsError(
                f"An Orchestration instance with the status {known} already exists "
                f"(instance id {instance_id!r})."
            )
        if instance_id in self._instances and self._instances[instance_id].worker is not None:
            raise InstanceExistsError(f"instance {instance_id!r} is still being updated")
        self._status[instance_id] = "Pending"  # claimed before the first await
        try:
            return await self._store_new(name, instance_id, input_text, parent, known)
        except BaseException:
            if known is None:
                self._status.pop(instance_id, None)
            else:
                self._status[instance_id] = known
            raise

    async def _store_new(
        self,
        name: str,
        instance_id: str,
        input_text: str | None,
        parent: dict[str, Any] | None,
        known: str | None,
    ) -> str:
        existing = await self._store.load(instance_id) if known is not None else None
        execution = uuid.uuid4().hex
        now = timestamp()
        record = InstanceRecord(
            instance_id=instance_id,
            name=name,
            execution_id=execution,
            input=input_text,
            created=now,
            updated=now,
            parent=parent,
        )
        started = {
            "event": _event(
                EXECUTION_STARTED,
                Version="",
                Name=name,
                Input=input_text,
                OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution},
            ),
            "execution": execution,
        }
        message = await self._store.create(record, started, replace=existing)
        instance = self._instance(instance_id)
        instance.stored = StoredInstance(record, [], [], [message], [])
        instance.arrived.clear()
        self._kick(instance)
        return instance_id

    async def status(self, instance_id: str) -> StoredInstance | None:
        return await self._store.load(instance_id)

    async def records(self) -> list[InstanceRecord]:
        return [r async for r in self._store.instance_ids()]

    async def raise_event(self, instance_id: str, name: str, data: str | None) -> None:
        await self.deliver(instance_id, _event(EVENT_RAISED, Name=name, Input=data), None)

    async def terminate(self, instance_id: str, reason: str) -> None:
        await self.deliver(instance_id, _event(EXECUTION_TERMINATED, Input=reason), None)

    async def purge(self, stored: StoredInstance) -> None:
        await self._store.purge(stored)
        self._instances.pop(stored.record.instance_id, None)
        self._status.pop(stored.record.instance_id, None)

    async def wait_for(self, instance_id: str, statuses: set[str] = TERMINAL) -> str:
        """Wait until the instance reaches one of `statuses`; bound it with asyncio.timeout."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._status.get(instance_id) in statuses)
        return self._status.get(instance_id, "")

    # ----------------------------------------------------------------- messages
    async def deliver(
        self,
        instance_id: str,
        event: dict[str, Any],
        execution: str | None,
        *,
        durable: bool = True,
    ) -> None:
        """Put a history event in an instance's inbox, then wake the instance.

        `durable=False` keeps it in memory until the next episode records it in history (in the
        episode's transaction): used for the results of the host's own work (activities, timers),
        which a restart derives from history and runs again if their result was not recorded.
        Messages from elsewhere (clients, entities, other instances) are stored first.
        """
        body = {"event": event, "execution": execution}
        if durable:
            message = await self._store.add_message(instance_id, body)
        else:
            message = Message(INBOX_PREFIX + self._store.next_seq(), body, rows=0)
        instance = self._instance(instance_id)
        instance.arrived.append(message)
        self._kick(instance)

    def _instance(self, instance_id: str) -> _Instance:
        instance = self._instances.get(instance_id)
        if instance is None:
            instance = self._instances[instance_id] = _Instance(instance_id)
        return instance

    def _kick(self, instance: _Instance) -> None:
        if self._stopping or self._recovering or instance.worker is not None:
            return
        has_work = instance.stored is None or instance.arrived or instance.stored.inbox
        if has_work:
            instance.worker = asyncio.create_task(
                self._drain(instance), name=f"orchestration {instance.id}"
            )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, instance: _Instance) -> None:
        failed = False
        try:
            while not self._stopping:
                if instance.stored is None:
                    instance.stored = await self._store.load(instance.id)
                    if instance.stored is None:
                        instance.arrived.clear()
                        break
                known = {m.key for m in instance.stored.inbox}
                instance.stored.inbox.extend(m for m in instance.arrived if m.key not in known)
                instance.arrived.clear()
                instance.stored.inbox.sort(key=lambda m: m.key)
                if not instance.stored.inbox:
                    break
                async with self._orchestrator_slots:
                    await self._episode(instance, instance.stored)
                instance.failed_attempts = 0
                self._status[instance.id] = instance.stored.record.status
                async with self._changed:
                    self._changed.notify_all()
        except Exception:
            failed = True
            instance.failed_attempts += 1
            if instance.stored is not None:  # keep the results held in memory only
                held = [m for m in instance.stored.inbox if not m.rows]
                instance.arrived[:0] = held
            instance.stored = None  # reload: the commit may or may not have happened
            log.exception("orchestration %s: episode failed; retrying", instance.id)
        finally:
            instance.worker = None
        if failed:
            delay = min(0.2 * 2**instance.failed_attempts, 5.0)
            asyncio.get_running_loop().call_later(delay, self._kick, instance)
            return
        stored = instance.stored
        if (
            stored is not None
            and stored.record.status in TERMINAL
            and not instance.arrived
            and not stored.inbox
        ):
            self._instances.pop(instance.id, None)
            return
        self._kick(instance)

    # ----------------------------------------------------------------- one episode
    async def _episode(self, instance: _Instance, stored: StoredInstance) -> None:
        record = stored.record
        done = {k for e in stored.history if (k := _completion_key(e))}
        consumed: list[Message] = []
        new: list[dict[str, Any]] = []
        terminate: dict[str, Any] | None = None
        for message in stored.inbox:
            if len(consumed) >= MAX_INBOX_PER_EPISODE:
                break
            consumed.append(message)
            event = dict(message.body["event"])
            execution = message.body.get("execution")
            if record.status in TERMINAL:
                continue  # messages for a finished instance are dropped, as in Azure
            if execution is not None and execution != record.execution_id:
                continue  # a result for an execution that continued as new
            key = _completion_key(event)
            if key is not None:
                if key in done:
                    continue  # a duplicate delivery (at-least-once work that ran again)
                done.add(key)
            if event["EventType"] == EXECUTION_TERMINATED:
                terminate = event
                break
            new.append(event)
            if self._retry_sensitive(record, event):
                break
        if record.status in TERMINAL or (not new and terminate is None):
            await self._commit(instance, stored, record, consumed, [], [])
            return
        record.episodes += 1
        record.updated = timestamp()
        if terminate is not None:
            reason = terminate.get("Input") or ""
            record.status = "Terminated"
            record.output = json.dumps(reason)
            events = [*new, _event(EXECUTION_TERMINATED, Input=reason)]
            outbox = self._parent_reply(record, failed=f"terminated: {reason}")
            await self._commit(instance, stored, record, consumed, events, outbox)
            return
        if record.status == "Pending":
            record.status = "Running"
        started = _event(ORCHESTRATOR_STARTED)
        state, error = await self._run_orchestrator(record, stored.history, started, new)
        scheduled, outbox, restart = self._apply(record, state, new)
        events = [started, *new, *scheduled]
        if state.get("customStatus") is not None:
            record.custom_status = json.dumps(state["customStatus"])
        if error is not None:
            record.status = "Failed"
            record.output = json.dumps(error)
            events.append(_event(EXECUTION_COMPLETED, OrchestrationStatus="Failed", Result=error))
            outbox.extend(self._parent_reply(record, failed=error))
        elif state.get("isDone") and restart is None:
            record.status = "Completed"
            record.output = json.dumps(state.get("output"))
            events.append(_event(EXECUTION_COMPLETED, OrchestrationStatus="Completed"))
            outbox.extend(self._parent_reply(record, failed=None))
        events.append(_event(ORCHESTRATOR_COMPLETED))
        if restart is not None and state.get("isDone") and error is None:
            await self._continue_as_new(instance, stored, record, consumed, outbox, restart)
            return
        await self._commit(instance, stored, record, consumed, events, outbox)

    async def _run_orchestrator(
        self,
        record: InstanceRecord,
        history: list[dict[str, Any]],
        started: dict[str, Any],
        new: list[dict[str, Any]],
    ) -> tuple[dict[str, Any], str | None]:
        """Call the SDK's handle with the JSON the Functions host sends; (state, error)."""
        replayed = [{**e, "IsPlayed": True} for e in history]
        context = {
            "history": [*replayed, started, *new],
            "instanceId": record.instance_id,
            "isReplaying": bool(replayed),
            "parentInstanceId": (record.parent or {}).get("instance"),
            "input": record.input,
            "upperSchemaVersion": 0,
        }
        spec = self.orchestrators.get(record.name)
        if spec is None:
            return {"actions": []}, f"no orchestrator function named {record.name!r}"
        if self.episode_observer is not None:
            self.episode_observer(context)
        body = OrchestrationContext(json.dumps(context))
        self.episodes_run += 1
        try:
            output = await asyncio.to_thread(spec.func, body)
            return json.loads(output), None
        except Exception as exc:
            text = str(exc)
            if _OUT_OF_PROC in text:
                message, _, data = text.partition(_OUT_OF_PROC)
                state = json.loads(data)
                return state, str(state.get("error") or message)
            log.exception("orchestration %s: the orchestrator handle failed", record.instance_id)
            return {"actions": []}, f"{type(exc).__name__}: {exc}"

    def _retry_sensitive(self, record: InstanceRecord, event: dict[str, Any]) -> bool:
        kind = event["EventType"]
        if kind in (TASK_FAILED, SUB_FAILED):
            return str(event.get("TaskScheduledId")) in record.retries
        if kind == TIMER_FIRED:
            return str(event.get("TimerId")) in record.retries
        return False

    def _apply(
        self, record: InstanceRecord, state: dict[str, Any], new: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
        """Apply the actions not yet applied; returns (history events, outbox, continue-as-new)."""
        groups = state.get("actions") or []
        flat = [a for g in groups for a in (g if isinstance(g, list) else [g])]
        events: list[dict[str, Any]] = []
        outbox: list[dict[str, Any]] = []
        restart: dict[str, Any] | None = None
        ids = list(record.action_ids)
        for action in flat[record.applied :]:
            kind = action.get("actionType")
            if kind == WAIT_EVENT:
                ids.append(None)
                continue
            task_id = record.next_id
            record.next_id += 1
            ids.append(task_id)
            if kind in (CALL_ACTIVITY, CALL_ACTIVITY_RETRY):
                events.append(
                    _event(
                        TASK_SCHEDULED,
                        task_id,
                        Name=action["functionName"],
                        Input=action.get("input"),
                    )
                )
            elif kind in (CALL_SUB, CALL_SUB_RETRY):
                events.append(self._sub_created(record, task_id, action, outbox))
            elif kind == CREATE_TIMER:
                events.append(_event(TIMER_CREATED, task_id, FireAt=action["fireAt"]))
            elif kind in (CALL_ENTITY, SIGNAL_ENTITY):
                events.append(self._entity_message(record, task_id, action, outbox))
            elif kind == CONTINUE_AS_NEW:
                restart = {"input": action.get("input")}
            elif kind == CALL_HTTP:  # run as an activity that fails: not supported locally
                events.append(_event(TASK_SCHEDULED, task_id, Name=HTTP_ACTIVITY, Input=None))
            if kind in (CALL_ACTIVITY_RETRY, CALL_SUB_RETRY):
                options = action.get("retryOptions") or {}
                record.retries[str(task_id)] = {
                    "action": action,
                    "attempt": 1,
                    "first_ms": int(options.get("firstRetryIntervalInMilliseconds", 1000)),
                    "max": int(options.get("maxNumberOfAttempts", 1)),
                }
        record.applied = len(flat)
        record.action_ids = ids
        record.cancelled_timers = sorted(
            {
                i
                for a, i in zip(flat, ids, strict=False)
                if i is not None and a.get("actionType") == CREATE_TIMER and a.get("isCanceled")
            }
        )
        events.extend(self._retries(record, new, outbox))
        return events, outbox, restart

    def _retries(
        self, record: InstanceRecord, new: list[dict[str, Any]], outbox: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Retry timers and rescheduled tasks for `call_*_with_retry` (at most one per episode)."""
        events: list[dict[str, Any]] = []
        for event in new:
            kind = event["EventType"]
            if kind in (TASK_COMPLETED, SUB_COMPLETED):
                record.retries.pop(str(event.get("TaskScheduledId")), None)
            elif kind in (TASK_FAILED, SUB_FAILED):
                chain = record.retries.pop(str(event.get("TaskScheduledId")), None)
                if chain is None:
                    continue
                timer_id = record.next_id
                record.next_id += 1
                fire_at = datetime.now(UTC) + timedelta(milliseconds=chain["first_ms"])
                events.append(_event(TIMER_CREATED, timer_id, FireAt=timestamp(fire_at)))
                record.retries[str(timer_id)] = chain
            elif kind == TIMER_FIRED:
                chain = record.retries.pop(str(event.get("TimerId")), None)
                if chain is None or chain["attempt"] >= chain["max"]:
                    continue
                task_id = record.next_id
                record.next_id += 1
                chain["attempt"] += 1
                action = chain["action"]
                if action["actionType"] == CALL_ACTIVITY_RETRY:
                    events.append(
                        _event(
                            TASK_SCHEDULED,
                            task_id,
                            Name=action["functionName"],
                            Input=action.get("input"),
                        )
                    )
                else:
                    events.append(self._sub_created(record, task_id, action, outbox))
                record.retries[str(task_id)] = chain
        return events

    def _sub_created(
        self,
        record: InstanceRecord,
        task_id: int,
        action: dict[str, Any],
        outbox: list[dict[str, Any]],
    ) -> dict[str, Any]:
        child = (
            action.get("instanceId") or f"{record.instance_id}:{record.execution_id[:8]}:{task_id}"
        )
        outbox.append(
            {
                "kind": "start",
                "name": action["functionName"],
                "instance": child,
                "input": action.get("input"),
                "parent": {
                    "instance": record.instance_id,
                    "execution": record.execution_id,
                    "task": task_id,
                },
            }
        )
        return _event(
            SUB_CREATED,
            task_id,
            Name=action["functionName"],
            InstanceId=child,
            Input=action.get("input"),
        )

    def _entity_message(
        self,
        record: InstanceRecord,
        task_id: int,
        action: dict[str, Any],
        outbox: list[dict[str, Any]],
    ) -> dict[str, Any]:
        call = action.get("actionType") == CALL_ENTITY
        request = uuid.uuid5(_CALL_NAMESPACE, f"{record.execution_id}:{task_id}")
        request_id = f"call:{request}" if call else str(request)
        target = str(action["instanceId"])  # "@name@key"
        outbox.append(
            {
                "kind": "entity",
                "entity": target,
                "operation": action.get("operation"),
                "input": action.get("input"),
                "id": request_id,
                "seq": self._store.next_seq(),
                "reply": {"instance": record.instance_id, "execution": record.execution_id}
                if call
                else None,
            }
        )
        sent = {
            "id": request_id,
            "op": action.get("operation"),
            "signal": not call,
            "input": action.get("input"),
            "parent": record.instance_id,
        }
        return _event(EVENT_SENT, task_id, InstanceId=target, Name="op", Input=json.dumps(sent))

    def _parent_reply(self, record: InstanceRecord, failed: str | None) -> list[dict[str, Any]]:
        parent = record.parent
        if not parent:
            return []
        if failed is None:
            event = _event(SUB_COMPLETED, TaskScheduledId=parent["task"], Result=record.output)
        else:
            event = _event(
                SUB_FAILED,
                TaskScheduledId=parent["task"],
                Reason=f"Sub-orchestration {record.instance_id!r} failed: {failed}",
                Details="",
            )
        return [
            {
                "kind": "reply",
                "instance": parent["instance"],
                "execution": parent["execution"],
                "event": event,
            }
        ]

    async def _continue_as_new(
        self,
        instance: _Instance,
        stored: StoredInstance,
        record: InstanceRecord,
        consumed: list[Message],
        outbox: list[dict[str, Any]],
        restart: dict[str, Any],
    ) -> None:
        execution = uuid.uuid4().hex
        fresh = InstanceRecord(
            instance_id=record.instance_id,
            name=record.name,
            status="Running",
            execution_id=execution,
            input=restart["input"],
            custom_status=record.custom_status,
            created=record.created,
            updated=timestamp(),
            episodes=record.episodes,
            parent=record.parent,
        )
        started = {
            "event": _event(
                EXECUTION_STARTED,
                Version="",
                Name=record.name,
                Input=restart["input"],
                OrchestrationInstance={"InstanceId": record.instance_id, "ExecutionId": execution},
            ),
            "execution": execution,
        }
        for key in list(self._timers):
            if key[0] == record.instance_id:
                self._timers.pop(key).cancel()
        _, out_message, in_message = await self._store.commit_episode(
            fresh,
            consumed=consumed,
            new_events=[],
            outbox=outbox,
            reset_history=stored.history_rows,
            restart_with=started,
        )
        consumed_keys = {m.key for m in consumed}
        stored.record = fresh
        stored.history, stored.history_rows = [], []
        stored.inbox = [m for m in stored.inbox if m.key not in consumed_keys]
        if in_message is not None:
            stored.inbox.append(in_message)
        if out_message is not None:
            self._spawn(self._flush_outbox(record.instance_id, out_message))

    async def _commit(
        self,
        instance: _Instance,
        stored: StoredInstance,
        record: InstanceRecord,
        consumed: list[Message],
        events: list[dict[str, Any]],
        outbox: list[dict[str, Any]],
    ) -> None:
        keys, out_message, _ = await self._store.commit_episode(
            record, consumed=consumed, new_events=events, outbox=outbox, reset_history=[]
        )
        consumed_keys = {m.key for m in consumed}
        stored.record = record
        stored.history.extend(events)
        stored.history_rows.extend(keys)
        stored.inbox = [m for m in stored.inbox if m.key not in consumed_keys]
        if out_message is not None:
            self._spawn(self._flush_outbox(record.instance_id, out_message))
        if record.status in TERMINAL:
            for key in list(self._timers):
                if key[0] == record.instance_id:
                    self._timers.pop(key).cancel()
        else:
            self._schedule_work(instance)

    # ----------------------------------------------------------------- work derived from history
    def _schedule_work(self, instance: _Instance) -> None:
        """Start the activities and arm the timers history says are outstanding."""
        stored = instance.stored
        if stored is None or stored.record.status in TERMINAL or self._stopping:
            return
        record = stored.record
        done = {k for e in stored.history if (k := _completion_key(e))}
        for message in [*stored.inbox, *instance.arrived]:
            if message.body.get("execution") == record.execution_id:
                key = _completion_key(message.body["event"])
                if key is not None:
                    done.add(key)
        for event in stored.history:
            kind = event["EventType"]
            work = (record.instance_id, record.execution_id, int(event["EventId"]))
            if kind == TASK_SCHEDULED and f"task:{event['EventId']}" not in done:
                if work not in self._running_work:
                    self._running_work.add(work)
                    self._spawn(self._run_activity(work, str(event["Name"]), event.get("Input")))
            elif kind == TIMER_CREATED and f"timer:{event['EventId']}" not in done:
                if work in self._timers or int(event["EventId"]) in record.cancelled_timers:
                    continue
                fire_at = datetime.fromisoformat(str(event["FireAt"]).replace("Z", "+00:00"))
                if fire_at.tzinfo is None:
                    fire_at = fire_at.replace(tzinfo=UTC)
                delay = max(0.0, (fire_at - datetime.now(UTC)).total_seconds())
                self._timers[work] = asyncio.get_running_loop().call_later(
                    delay, self._fire, work, str(event["FireAt"])
                )

    def _fire(self, work: tuple[str, str, int], fire_at: str) -> None:
        self._timers.pop(work, None)
        instance_id, execution, timer_id = work
        event = _event(TIMER_FIRED, TimerId=timer_id, FireAt=fire_at)
        self._spawn(self.deliver(instance_id, event, execution, durable=False))

    async def _run_activity(
        self, work: tuple[str, str, int], name: str, input_text: str | None
    ) -> None:
        instance_id, execution, task_id = work
        try:
            spec = self.activities.get(name)
            async with self._activity_slots:
                if self._stopping:
                    return
                if spec is None:
                    reason = (
                        "call_http is not supported by the local host"
                        if name == HTTP_ACTIVITY
                        else f"The activity function '{name}' doesn't exist."
                    )
                    event = _event(TASK_FAILED, TaskScheduledId=task_id, Reason=reason, Details="")
                else:
                    event = await self._activity_event(spec, name, task_id, input_text)
            await self.deliver(instance_id, event, execution, durable=False)
        finally:
            self._running_work.discard(work)

    async def _activity_event(
        self, spec: FunctionSpec, name: str, task_id: int, input_text: str | None
    ) -> dict[str, Any]:
        try:
            value = ActivityTriggerConverter.decode(
                meta.Datum(type="json", value=input_text if input_text is not None else "null"),
                trigger_metadata=None,
            )
            self.activity_runs += 1
            result = await self._invoke_activity(spec, value)
            encoded = ActivityTriggerConverter.encode(result, expected_type=None).value
            return _event(TASK_COMPLETED, TaskScheduledId=task_id, Result=encoded)
        except Exception as exc:
            log.warning("activity %s failed: %r", name, exc)
            return _event(
                TASK_FAILED,
                TaskScheduledId=task_id,
                Reason=f"Activity function '{name}' failed: {exc}",
                Details="".join(traceback.format_exception(exc)),
            )

    # ----------------------------------------------------------------- outbox
    async def _flush_outbox(self, instance_id: str, message: Message) -> None:
        """Deliver an episode's messages to other partitions, then drop the outbox row.

        Entity messages are stored held and released only after the row is gone: delivered
        again (after a crash before the delete) they are found stored and not stored twice, and
        they cannot have been applied yet, so each applies once.
        """
        delay = 0.1
        staged: list[Any] = []
        while not self._stopping:
            try:
                for item in message.body["messages"]:
                    await self._send(item, staged)
                await self._store.delete_message(instance_id, message)
            except AzureError:
                log.warning("delivering the outbox of %s failed; retrying", instance_id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                self._release_entity_messages(staged)
                return
        # Stopping: staged messages stay stored and held; the next start delivers the outbox
        # again (finding them stored) before the entities resume them.

    async def _send(self, item: dict[str, Any], staged: list[Any]) -> None:
        kind = item["kind"]
        if kind == "entity":
            await self._send_to_entity(item, staged)
        elif kind == "reply":
            await self.deliver(item["instance"], item["event"], item["execution"])
        elif kind == "start":
            existing = await self._store.load(item["instance"])
            if existing is not None and existing.record.parent == item["parent"]:
                return  # already started by an earlier delivery
            try:
                await self._create(item["name"], item["instance"], item["input"], item["parent"])
            except (InstanceExistsError, UnknownOrchestratorError) as exc:
                parent = item["parent"]
                await self.deliver(
                    parent["instance"],
                    _event(SUB_FAILED, TaskScheduledId=parent["task"], Reason=str(exc), Details=""),
                    parent["execution"],
                )

    async def entity_reply(
        self, reply: dict[str, Any], request_id: str, result: dict[str, Any]
    ) -> None:
        """An entity answered a `call_entity`: the response event for the calling orchestration."""
        payload: dict[str, Any]
        if result.get("isError"):
            payload = {"result": json.dumps(result.get("result")), "exceptionType": "Exception"}
        else:
            payload = {
                "result": result.get("result") if result.get("result") is not None else "null"
            }
        event = _event(EVENT_RAISED, Name=request_id, Input=json.dumps(payload))
        await self.deliver(reply["instance"], event, reply["execution"])


def history_summary(events: list[dict[str, Any]], with_output: bool) -> list[dict[str, Any]]:
    """History as the status API shows it: event names, no replay bookkeeping."""
    shown = []
    for event in events:
        kind = event.get("EventType")
        if kind in (ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED):
            continue
        item: dict[str, Any] = {
            "EventType": EVENT_NAMES.get(int(kind or 0), str(kind)),
            "Timestamp": event.get("Timestamp"),
        }
        for source, target in (
            ("Name", "FunctionName"),
            ("TaskScheduledId", "ScheduledId"),
            ("TimerId", "TimerId"),
            ("FireAt", "FireAt"),
            ("Reason", "Reason"),
        ):
            if event.get(source) is not None:
                item[target] = event[source]
        if with_output and event.get("Result") is not None:
            item["Result"] = event["Result"]
        shown.append(item)
    return shown
