"""Settings: the platform's own names, defaults, and errors that name the setting at fault."""

from __future__ import annotations

import pytest

from aos.adapters.azure.clients import table_client
from aos.errors import ConfigurationError
from aos.settings import SETTINGS_REFERENCE, Settings

AZURITE = "UseDevelopmentStorage=true"


def test_defaults_with_a_connection_string() -> None:
    settings = Settings.from_environ({"AzureWebJobsStorage": AZURITE})
    assert settings.events_queue == "aos-events"
    assert settings.poison_queue == "aos-events-poison"
    assert settings.deadletter_queue == "aos-events-deadletter"
    assert settings.storage.connection_string is not None
    assert "127.0.0.1:10001" in settings.storage.connection_string
    assert settings.limits.recent_events == 8
    assert settings.limits.processed_ids == 500


def test_identity_based_storage_as_in_azure() -> None:
    settings = Settings.from_environ(
        {"AzureWebJobsStorage__accountName": "aosstore", "AzureWebJobsStorage__clientId": "cid"}
    )
    assert settings.storage.connection_string is None
    assert settings.storage.queue_endpoint == "https://aosstore.queue.core.windows.net"
    assert settings.storage.table_endpoint == "https://aosstore.table.core.windows.net"
    assert settings.storage.client_id == "cid"


def test_missing_storage_names_the_setting_when_storage_is_used() -> None:
    settings = Settings.from_environ({})  # the entity function needs no storage
    assert not settings.storage.configured
    with pytest.raises(ConfigurationError, match="AzureWebJobsStorage"):
        table_client(settings.storage, "AOSAgents")


def test_limits_come_from_settings_and_are_checked() -> None:
    env = {"AzureWebJobsStorage": AZURITE, "AOS_RECENT_EVENTS": "5", "AOS_MAX_GOALS": "4"}
    settings = Settings.from_environ(env)
    assert (settings.limits.recent_events, settings.limits.max_goals) == (5, 4)
    with pytest.raises(ConfigurationError, match="AOS_RECENT_EVENTS"):
        Settings.from_environ({**env, "AOS_RECENT_EVENTS": "lots"})
    with pytest.raises(ConfigurationError, match="over the 32768-byte cap"):
        Settings.from_environ({**env, "AOS_RECENT_EVENTS": "60"})
    with pytest.raises(ConfigurationError, match="AOS_HISTORY_RETENTION_DAYS"):
        Settings.from_environ({**env, "AOS_HISTORY_RETENTION_DAYS": "0"})


def test_every_documented_setting_has_a_default_and_a_description() -> None:
    assert all(default and text for default, text in SETTINGS_REFERENCE.values())
