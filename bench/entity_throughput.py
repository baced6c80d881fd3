"""Entity throughput through the durable SDK's own entity path, against a trivial entity.

Both entities run in the SDK's ``Entity.create(fn)`` handler with the batch JSON the Functions host
sends (operation input encoded twice), in batches of 100 ``handle_event`` operations, and both carry
a state of the same size: the agent's state at its cap (every window full, the user budget nearly
spent). The trivial entity reads its input, bumps a counter in that state and sets it, which is the
least any entity does. Also reports the agent's state size after 1,000 and 100,000 events.

    .venv/bin/python bench/entity_throughput.py [--batches N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.durable_functions as df
from azure.functions._durable_functions import EntityContext

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aos import AgentKinds, Limits
from aos.agents.entity import AgentEntity, EntityBatch

BATCH = 100
USER = ("spec", "goals", "state")


def batch_handle(entity: AgentEntity) -> Callable[[Any], str]:
    """The SDK's entity handle for each batch, as the app's entity function makes it."""

    def handle(context: Any) -> str:
        result: str = df.Entity.create(entity.for_batch(EntityBatch()))(context)
        return result

    return handle


def trivial_entity(context: df.DurableEntityContext) -> None:
    state = dict(context.get_state())
    event = context.get_input()
    state["n"] = state.get("n", 0) + 1
    context.set_state(state)
    context.set_result({"event_id": event["event_id"]})


def event_ops(start: int, count: int, *, numbered: bool = True) -> list[dict[str, Any]]:
    """``count`` handle_event operations; ``numbered=False`` keeps every event the same size
    (fixed-width ids, constant data), so that state sizes compare like for like."""
    return [
        {
            "name": "handle_event",
            "input": json.dumps(
                json.dumps(
                    {
                        "event_id": uuid.UUID(int=i).hex,
                        "type": "order.created",
                        "source": "shop",
                        "data": {
                            "order": i if numbered else 0,
                            "total": 12.5,
                            "currency": "EUR",
                            "note": "Two boxes of the blue notebooks, gift-wrapped. " * 3,
                        },
                    }
                )
            ),
            "signal": True,
            "id": str(i),
        }
        for i in range(start, start + count)
    ]


def run_batch(handle: Callable[[Any], str], state: str, ops: list[dict[str, Any]]) -> str:
    body = {"self": {"name": "agent", "key": "bench"}, "state": state, "exists": True, "batch": ops}
    out = json.loads(handle(EntityContext(json.dumps(body))))
    if any(r["isError"] for r in out["results"]):
        raise RuntimeError(out["results"][0]["result"])
    return str(out["entityState"])


def state_at_cap(agent_handle: Callable[[Any], str], limits: Limits) -> str:
    """Configure, spend the user budget, then fill every window (decisions included)."""
    configure = {
        "name": "configure",
        "input": json.dumps(
            json.dumps(
                {
                    "kind": "generic",
                    "purpose": "Grow revenue through delighted customers " * 10,
                    "purpose_scope": "Sales, pricing, support " * 10,
                    "success_criteria": [f"Criterion {i} about revenue growth" for i in range(10)],
                }
            )
        ),
        "signal": True,
        "id": "c",
    }
    body = {"self": {"name": "agent", "key": "bench"}, "state": None, "exists": False}
    state = json.loads(agent_handle(EntityContext(json.dumps({**body, "batch": [configure]}))))[
        "entityState"
    ]
    fill: list[dict[str, Any]] = []
    for i in range(limits.max_goals // 4):
        goal = {"id": f"g{i}", "description": f"Goal {i}: raise repeat purchases " * 4}
        fill.append({"name": "add_goal", "input": json.dumps(json.dumps(goal)), "id": f"g{i}"})
    for i in range(limits.recent_decisions):
        decision = {"decision_id": f"d{i}", "options": ["raise prices", "improve support"]}
        fill.append({"name": "decide", "input": json.dumps(json.dumps(decision)), "id": f"d{i}"})
    state = run_batch(agent_handle, state, fill)
    # Spend what is left of the user budget on key/value state, in 500-byte values.
    free = limits.user_state_bytes - sum(len(json.dumps(json.loads(state)[k])) for k in USER)
    writes = [
        {
            "name": "update_state",
            "input": json.dumps(json.dumps({"key": f"k{i}", "value": "v" * 480})),
            "id": f"s{i}",
        }
        for i in range(max(0, free // 500 - 1))
    ]
    state = run_batch(agent_handle, state, writes)
    return run_batch(agent_handle, state, event_ops(10**9, limits.processed_ids))


def measure(handle: Callable[[Any], str], state: str, batches: int, start: int) -> float:
    """Operations per second over ``batches`` batches (state carried from batch to batch)."""
    ops = [event_ops(start + b * BATCH, BATCH) for b in range(batches)]
    begin = time.perf_counter()
    for batch in ops:
        state = run_batch(handle, state, batch)
    return batches * BATCH / (time.perf_counter() - begin)


def size_after(agent_handle: Callable[[Any], str], events: int) -> int:
    configure = {
        "name": "configure",
        "input": json.dumps(json.dumps({"purpose": "Grow revenue"})),
        "id": "c",
    }
    body = {"self": {"name": "agent", "key": "size"}, "state": None, "exists": False}
    state = json.loads(agent_handle(EntityContext(json.dumps({**body, "batch": [configure]}))))[
        "entityState"
    ]
    for start in range(0, events, BATCH):
        state = run_batch(agent_handle, state, event_ops(start, BATCH, numbered=False))
    return len(state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100, help="batches of 100 per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (median taken)")
    args = parser.parse_args()

    limits = Limits()
    agent_handle = batch_handle(AgentEntity(AgentKinds.builtin(), limits))
    trivial_handle = df.Entity.create(trivial_entity)
    agent_state = state_at_cap(agent_handle, limits)
    trivial_state = json.dumps({"n": 0, "padding": "x" * (len(agent_state) - 30)})

    agent_rates, trivial_rates = [], []
    for r in range(args.rounds):  # alternate, so machine noise hits both alike
        trivial_rates.append(measure(trivial_handle, trivial_state, args.batches, r * 10**7))
        agent_rates.append(measure(agent_handle, agent_state, args.batches, r * 10**7))
    agent, trivial = statistics.median(agent_rates), statistics.median(trivial_rates)
    size_1k, size_100k = size_after(agent_handle, 1_000), size_after(agent_handle, 100_000)

    rows = [
        ("trivial entity (same SDK, same state size)", f"{trivial:,.0f} ops/s"),
        ("agent entity, handle_event, state at cap", f"{agent:,.0f} ops/s"),
        ("ratio agent / trivial (target >= 0.5)", f"{agent / trivial:.2f}"),
        ("state at cap", f"{len(agent_state):,} bytes (cap {limits.max_state_bytes:,})"),
        ("state after 1,000 events", f"{size_1k:,} bytes"),
        ("state after 100,000 events", f"{size_100k:,} bytes"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(
        json.dumps(
            {
                "bench": "entity_throughput",
                "batch_size": BATCH,
                "trivial_ops_per_s": round(trivial),
                "agent_ops_per_s": round(agent),
                "ratio": round(agent / trivial, 3),
                "state_at_cap_bytes": len(agent_state),
                "state_after_1000_bytes": size_1k,
                "state_after_100000_bytes": size_100k,
            }
        )
    )


if __name__ == "__main__":
    main()
