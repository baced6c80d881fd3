"""``AgentIndex`` on an Azure Table (Azurite locally).

One partition holds the whole index, so that an agent row and its subscription rows change in one
atomic transaction (Table transactions are single-partition, at most 100 operations; an agent has
at most 32 subscriptions):

    RowKey "a|<agent_id>"                 the agent: spec (JSON), status, timestamps
    RowKey "s|<event type>|<agent_id>"    one row per subscription, for prefix look-ups

"|" cannot occur in agent ids or event types, and "/" (allowed in event types, not in row keys)
is stored as "%2F".
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TransactionOperation, UpdateMode

from aos.adapters.azure.tables import TableAdapter, storage_error
from aos.domain.models import AgentSpec, format_timestamp
from aos.errors import AgentExistsError, ConflictError
from aos.ports.index import (
    AgentIndex,
    IndexEntry,
    IndexStatus,
    Page,
    decode_token,
    encode_token,
    invalid_token,
)

__all__ = ["TableAgentIndex"]

PARTITION = "agents"
T = TypeVar("T")


def _agent_key(agent_id: str) -> str:
    return f"a|{agent_id}"


def _subscription_key(event_type: str, agent_id: str) -> str:
    return f"s|{event_type.replace('/', '%2F')}|{agent_id}"


def _prefix_filter(prefix: str) -> tuple[str, dict[str, str]]:
    # "}" sorts right after "|", so [prefix, prefix with "|" -> "}") is exactly the prefix range.
    return (
        "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
        {"pk": PARTITION, "lo": prefix, "hi": prefix[:-1] + "}"},
    )


class TableAgentIndex(TableAdapter, AgentIndex):
    async def ping(self) -> None:
        await self.page(limit=1)

    # ------------------------------------------------------------------------------ reads
    async def get(self, *, agent_id: str) -> IndexEntry | None:
        try:
            row = await self._call(lambda: self._client.get_entity(PARTITION, _agent_key(agent_id)))
        except ResourceNotFoundError:
            return None
        return _entry(row)

    async def page(self, *, limit: int, continuation: str | None = None) -> Page[IndexEntry]:
        query, parameters = _prefix_filter("a|")
        # the SDK types its continuation as str; for Tables it is the dict it returned
        token: Any = _table_token(decode_token(continuation)) if continuation else None
        pages = self._client.query_entities(
            query, parameters=parameters, results_per_page=limit
        ).by_page(continuation_token=token)
        entries: list[IndexEntry] = []
        async with self._translated():
            await self._ensure_table()
            async for page in pages:
                entries = [_entry(row) async for row in page]
                break
        next_token = pages.continuation_token  # type: ignore[attr-defined]
        return Page(entries, encode_token(next_token) if next_token else None)

    async def subscribers(self, *, event_type: str) -> list[str]:
        agents: dict[str, None] = {}
        async with self._translated():
            await self._ensure_table()
            for subscribed in (event_type, "*"):
                query, parameters = _prefix_filter(_subscription_key(subscribed, ""))
                rows = self._client.query_entities(
                    query, parameters=parameters, select=["agent_id"]
                )
                async for row in rows:
                    agents[str(row["agent_id"])] = None
        return list(agents)

    # ------------------------------------------------------------------------------ writes
    async def create(self, *, entry: IndexEntry) -> IndexEntry:
        operations: list[Any] = [(TransactionOperation.CREATE, _row(entry))]
        operations += [
            (TransactionOperation.UPSERT, _subscription_row(t, entry.agent_id))
            for t in entry.spec.subscriptions
        ]
        try:
            await self._call(lambda: self._client.submit_transaction(operations))
        except (ResourceExistsError, _TransactionFailedError) as exc:
            raise AgentExistsError(entry.agent_id) from exc
        return await self._reload(entry)

    async def replace(self, *, entry: IndexEntry, previous: IndexEntry) -> IndexEntry:
        old, new = set(previous.spec.subscriptions), set(entry.spec.subscriptions)
        operations: list[Any] = [
            (
                TransactionOperation.UPDATE,
                _row(entry),
                {
                    "mode": UpdateMode.REPLACE,
                    "etag": previous.etag,
                    "match_condition": MatchConditions.IfNotModified,
                },
            )
        ]
        operations += [
            (TransactionOperation.DELETE, _subscription_row(t, entry.agent_id))
            for t in sorted(old - new)
        ]
        operations += [
            (TransactionOperation.UPSERT, _subscription_row(t, entry.agent_id))
            for t in sorted(new - old)
        ]
        try:
            await self._call(lambda: self._client.submit_transaction(operations))
        except (ResourceModifiedError, ResourceNotFoundError, _TransactionFailedError) as exc:
            raise ConflictError(
                f"Agent {entry.agent_id!r} was changed or removed concurrently; retry"
            ) from exc
        return await self._reload(entry)

    async def delete(self, *, entry: IndexEntry) -> None:
        operations: list[Any] = [(TransactionOperation.DELETE, _row(entry))]
        operations += [
            (TransactionOperation.DELETE, _subscription_row(t, entry.agent_id))
            for t in entry.spec.subscriptions
        ]
        try:
            await self._call(lambda: self._client.submit_transaction(operations))
        except (ResourceNotFoundError, _TransactionFailedError):
            # Some rows were gone already (a repeated DELETE): remove what is left, row by row.
            for _, row in operations:
                with suppress(ResourceNotFoundError):
                    await self._delete_row(row["RowKey"])

    # ------------------------------------------------------------------------------ plumbing
    async def _delete_row(self, row_key: str) -> None:
        async with self._translated():
            await self._client.delete_entity(PARTITION, row_key)

    async def _reload(self, entry: IndexEntry) -> IndexEntry:
        stored = await self.get(agent_id=entry.agent_id)
        if stored is None:  # removed between the write and the read: report it as a conflict
            raise ConflictError(f"Agent {entry.agent_id!r} was removed concurrently")
        return stored

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        async with self._translated():
            await self._ensure_table()
            return await operation()

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        """Map SDK errors to AOS ones at the edge; expected ones pass through for the caller."""
        try:
            yield
        except (ResourceNotFoundError, ResourceExistsError, ResourceModifiedError):
            raise
        except HttpResponseError as exc:
            if _is_transaction_failure(exc):
                raise _TransactionFailedError(str(exc)) from exc
            raise storage_error(exc, "The agents index") from exc
        except AzureError as exc:
            raise storage_error(exc, "The agents index") from exc


class _TransactionFailedError(Exception):
    """A transaction was rejected because one of its operations failed (exists / not found)."""


def _is_transaction_failure(exc: HttpResponseError) -> bool:
    return type(exc).__name__ == "TableTransactionError" or exc.status_code in (404, 409, 412)


def _table_token(token: Any) -> dict[str, str | None]:
    """The SDK's continuation (``{"PartitionKey": ..., "RowKey": ...}``, opaque strings the
    service returned), checked: a forged token of another shape would fail inside the SDK."""
    keys = {"PartitionKey", "RowKey"}
    if not isinstance(token, dict) or set(token) - keys or not token:
        raise invalid_token("not a position in the agents index")
    if not all(v is None or (isinstance(v, str) and len(v) <= 1024) for v in token.values()):
        raise invalid_token("not a position in the agents index")
    return {k: token.get(k) for k in sorted(keys)}


def _row(entry: IndexEntry) -> dict[str, Any]:
    return {
        "PartitionKey": PARTITION,
        "RowKey": _agent_key(entry.agent_id),
        "agent_id": entry.agent_id,
        "kind": entry.spec.kind,
        "status": entry.status.value,
        "spec": json.dumps(entry.spec.model_dump(mode="json")),
        "registered_at": format_timestamp(entry.registered_at),
        "updated_at": format_timestamp(entry.updated_at),
    }


def _subscription_row(event_type: str, agent_id: str) -> dict[str, Any]:
    return {
        "PartitionKey": PARTITION,
        "RowKey": _subscription_key(event_type, agent_id),
        "agent_id": agent_id,
        "event_type": event_type,
    }


def _entry(row: Any) -> IndexEntry:
    return IndexEntry(
        spec=AgentSpec.model_validate_json(row["spec"]),
        status=IndexStatus(row["status"]),
        registered_at=datetime.fromisoformat(row["registered_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        etag=row.metadata.get("etag"),
    )
