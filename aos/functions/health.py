"""Storage reachability for ``GET /api/health``: one cheap call per service, bounded in time."""

from __future__ import annotations

import asyncio

from aos.errors import AOSError
from aos.functions.container import AppRuntime

__all__ = ["check_storage"]

TIMEOUT_SECONDS = 5.0


async def check_storage(runtime: AppRuntime) -> dict[str, str]:
    """``{"queues": "ok" | reason, "tables": "ok" | reason}``."""
    try:
        storage = runtime.storage()
    except AOSError as exc:  # configuration: say which setting
        return {"queues": str(exc), "tables": str(exc)}

    async def probe(name: str, call: object) -> tuple[str, str]:
        try:
            await asyncio.wait_for(call, TIMEOUT_SECONDS)  # type: ignore[arg-type]
        except TimeoutError:
            return name, f"no answer within {TIMEOUT_SECONDS:.0f} s"
        except Exception as exc:
            return name, f"unreachable: {type(exc).__name__}"
        return name, "ok"

    results = await asyncio.gather(
        probe("queues", storage.queue.ping()),
        probe("tables", storage.index.ping()),
    )
    return dict(results)
