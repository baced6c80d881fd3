"""The Azurite wrapper: free ports, queues and tables served, a loud failure when missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.azurite import Azurite, AzuriteNotInstalledError
from devhost.storage_names import UniqueName

pytestmark = pytest.mark.azurite


def test_session_azurite_serves_queues_and_tables(
    azurite: Azurite, unique_name: UniqueName
) -> None:
    with QueueServiceClient.from_connection_string(azurite.connection_string) as qs:
        queue = qs.create_queue(unique_name.queue)
        queue.send_message("hello")
        assert [m.content for m in queue.receive_messages()] == ["hello"]
    with TableServiceClient.from_connection_string(azurite.connection_string) as ts:
        table = ts.create_table(unique_name.table)
        table.upsert_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})
        assert table.get_entity("p", "r")["v"] == 1


def test_connection_string_names_each_endpoint(azurite: Azurite) -> None:
    cs = azurite.connection_string
    assert f"QueueEndpoint=http://127.0.0.1:{azurite.queue_port}/devstoreaccount1;" in cs
    assert f"TableEndpoint=http://127.0.0.1:{azurite.table_port}/devstoreaccount1;" in cs
    assert f"BlobEndpoint=http://127.0.0.1:{azurite.blob_port}/devstoreaccount1;" in cs


def test_missing_binary_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(AzuriteNotInstalledError, match="npm ci"):
        Azurite(binary=tmp_path / "nope").start()


def test_stop_is_clean_and_idempotent() -> None:
    emulator = Azurite().start()
    assert emulator.running
    emulator.stop()
    emulator.stop()
    assert not emulator.running
