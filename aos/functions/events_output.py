# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""The queue output binding on the events queue that every HTTP function has (the API's and
MCP's): the events a request sends are collected in its outbox (``aos.adapters.outbox``) and
handed to the binding, which the host writes before the response goes out and which makes its
listener of the events queue poll at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import azure.functions as func

from aos.adapters.outbox import invocation_outbox

__all__ = ["events_output", "sending_through"]

T = TypeVar("T")


def events_output(bp: func.Blueprint) -> Callable[[Any], Any]:
    """The decorator adding the binding, as the parameter ``outbox``. Apply it outside
    ``durable_client_input``, which must stay innermost."""
    return bp.queue_output(
        arg_name="outbox", queue_name="%AOS_EVENTS_QUEUE%", connection="AzureWebJobsStorage"
    )


async def sending_through(outbox: func.Out[list[str]], handle: Awaitable[T]) -> T:
    """Await ``handle`` with an outbox open, then give the binding the events it sent."""
    with invocation_outbox() as sent:
        result = await handle
    if sent.messages:
        outbox.set(sent.messages)
    return result
