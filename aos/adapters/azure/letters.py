"""Dead-lettered and poisoned messages in an Azure Table, so they can be listed, paged and replayed.

A queue cannot be paged or read by id (peeking shows the first 32 messages), so every letter is
also a row of ``AOS_DEADLETTER_TABLE``:

    PartitionKey   "deadletter" | "poison"      which path set it aside
    RowKey         "<inverted µs>-<8 hex>"     newest first; also the letter's id in the API

The inverted timestamp (``10**17`` minus microseconds since the epoch, zero-padded) makes the
table's ascending key order the newest-first order the API pages in. The original message (up to
64 KB) and the errors are JSON text split over ``<name>0``, ``<name>1``, ... like the history
payload: a string property holds at most 32 K UTF-16 characters.
"""

from __future__ import annotations

import json
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError

from aos.adapters.azure.tables import TableAdapter
from aos.errors import StorageError
from aos.ports.index import Page, decode_token, encode_token
from aos.ports.letters import LetterQueue, LetterStore, StoredLetter

__all__ = ["PART_CHARS", "TableLetterStore"]


PART_CHARS = 30_000


class TableLetterStore(TableAdapter, LetterStore):
    async def add(self, *, letter: StoredLetter) -> StoredLetter:
        row: dict[str, Any] = {
            "PartitionKey": letter.queue,
            "RowKey": letter.id,
            "reason": letter.reason,
            "dead_lettered_at": letter.dead_lettered_at,
        }
        if letter.message_id is not None:
            row["message_id"] = letter.message_id
        if letter.dequeue_count is not None:
            row["dequeue_count"] = letter.dequeue_count
        row |= _split("original", letter.original)
        row |= _split("errors", json.dumps(letter.errors, separators=(",", ":")))
        try:
            await self._ensure_table()
            await self._client.upsert_entity(row)
        except AzureError as exc:
            raise StorageError(f"Dead-letter table unavailable: {exc}") from exc
        return letter

    async def get(self, *, queue: LetterQueue, letter_id: str) -> StoredLetter | None:
        try:
            await self._ensure_table()
            row = await self._client.get_entity(queue, letter_id)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StorageError(f"Dead-letter table unavailable: {exc}") from exc
        return _letter(row)

    async def page(
        self, *, queue: LetterQueue, limit: int, continuation: str | None = None
    ) -> Page[StoredLetter]:
        token = decode_token(continuation) if continuation else None
        pages = self._client.query_entities(
            "PartitionKey eq @pk", parameters={"pk": queue}, results_per_page=limit
        ).by_page(continuation_token=token)
        letters: list[StoredLetter] = []
        try:
            await self._ensure_table()
            async for page in pages:
                letters = [_letter(row) async for row in page]
                break
        except AzureError as exc:
            raise StorageError(f"Dead-letter table unavailable: {exc}") from exc
        next_token = pages.continuation_token  # type: ignore[attr-defined]
        return Page(letters, encode_token(next_token) if next_token else None)

    async def remove(self, *, letter: StoredLetter) -> bool:
        try:
            await self._client.delete_entity(
                letter.queue,
                letter.id,
                etag=letter.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            return False
        except AzureError as exc:
            raise StorageError(f"Dead-letter table unavailable: {exc}") from exc
        return True


def _split(name: str, text: str) -> dict[str, Any]:
    parts = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
    return {f"{name}_parts": len(parts), **{f"{name}{i}": p for i, p in enumerate(parts)}}


def _joined(row: Any, name: str) -> str:
    return "".join(str(row[f"{name}{i}"]) for i in range(int(row[f"{name}_parts"])))


def _letter(row: Any) -> StoredLetter:
    count = row.get("dequeue_count")
    return StoredLetter(
        id=str(row["RowKey"]),
        queue=row["PartitionKey"],
        reason=str(row["reason"]),
        original=_joined(row, "original"),
        dead_lettered_at=str(row["dead_lettered_at"]),
        errors=json.loads(_joined(row, "errors")),
        message_id=row.get("message_id"),
        dequeue_count=int(count) if count is not None else None,
        etag=row.metadata.get("etag"),
    )
