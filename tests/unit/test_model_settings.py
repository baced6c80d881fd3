"""Model profiles (``AOS_MODELS__<adapter>__*``): which model an agent thinks with, and errors that
name the setting at fault. Also: README's configuration table lists every setting with its default.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aos.errors import ConfigurationError
from aos.settings import (
    MODEL_SETTINGS_REFERENCE,
    SETTINGS_REFERENCE,
    ModelProfile,
    Settings,
)

README = Path(__file__).resolve().parents[2] / "README.md"
AZURITE = "UseDevelopmentStorage=true"


def settings(**models: str) -> Settings:
    return Settings.from_environ({"AzureWebJobsStorage": AZURITE, **models})


def test_no_profiles_means_the_offline_model() -> None:
    config = settings()
    assert dict(config.models) == {}
    assert config.model_profile("default") is None
    assert config.model_profile("ceo") is None


def test_an_azure_profile_with_defaults() -> None:
    config = settings(
        AOS_MODELS__default__ENDPOINT="https://aos.openai.azure.com",
        AOS_MODELS__default__DEPLOYMENT="gpt-4o-mini",
    )
    assert config.model_profile("anyone") == ModelProfile(
        name="default",
        api="azure_openai",
        endpoint="https://aos.openai.azure.com",
        deployment="gpt-4o-mini",
        api_key=None,
        api_version="2024-10-21",
        client_id=None,
        timeout_seconds=60.0,
        max_retries=3,
    )


def test_an_agents_own_profile_wins_and_names_match_loosely() -> None:
    config = settings(
        AOS_MODELS__default__ENDPOINT="https://aos.openai.azure.com",
        AOS_MODELS__default__DEPLOYMENT="gpt-4o-mini",
        AOS_MODELS__CFO_agent__ENDPOINT="http://127.0.0.1:8000/v1",
        AOS_MODELS__CFO_agent__DEPLOYMENT="llama3",
        AOS_MODELS__CFO_agent__API="OpenAI",
        AOS_MODELS__CFO_agent__API_KEY="sk-local",
        AOS_MODELS__CFO_agent__TIMEOUT_SECONDS="2.5",
        AOS_MODELS__CFO_agent__MAX_RETRIES="0",
        AOS_MODELS__ceo__ENDPOINT="https://ceo.openai.azure.com/",
        AOS_MODELS__ceo__DEPLOYMENT="gpt-4o",
        AOS_MODELS__ceo__CLIENT_ID="00000000-0000-0000-0000-000000000001",
        AOS_MODELS__ceo__API_VERSION="2025-04-01-preview",
    )
    cfo = config.model_profile("cfo-agent")  # - and . in an adapter name match _
    assert cfo is not None
    assert (cfo.name, cfo.api, cfo.endpoint, cfo.deployment) == (
        "CFO_agent",
        "openai",
        "http://127.0.0.1:8000/v1",
        "llama3",
    )
    assert (cfo.api_key, cfo.timeout_seconds, cfo.max_retries) == ("sk-local", 2.5, 0)
    assert config.model_profile("cfo.AGENT") is cfo
    ceo = config.model_profile("CEO")
    assert ceo is not None
    assert (ceo.client_id, ceo.api_version) == (
        "00000000-0000-0000-0000-000000000001",
        "2025-04-01-preview",
    )
    fallback = config.model_profile("cto")
    assert fallback is not None
    assert fallback.name == "default"
    assert set(config.models) == {"default", "cfo_agent", "ceo"}
    assert hash(config) == hash(settings())  # still usable as a cache key


def test_the_api_key_is_never_in_a_profiles_repr() -> None:
    config = settings(
        AOS_MODELS__default__ENDPOINT="https://aos.openai.azure.com",
        AOS_MODELS__default__DEPLOYMENT="gpt-4o-mini",
        AOS_MODELS__default__API_KEY="very-secret-key",
    )
    assert "very-secret-key" not in repr(config.model_profile("x"))
    assert "very-secret-key" not in repr(config)


def test_a_profile_whose_settings_are_all_empty_is_off() -> None:
    config = settings(AOS_MODELS__default__ENDPOINT="", AOS_MODELS__default__DEPLOYMENT=" ")
    assert config.model_profile("ceo") is None


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"AOS_MODELS__ceo__ENDPOINT": ""}, "AOS_MODELS__ceo__ENDPOINT"),
        ({"AOS_MODELS__ceo__DEPLOYMENT": " "}, "AOS_MODELS__ceo__DEPLOYMENT"),
        ({"AOS_MODELS__ceo__ENDPOINT": "x.openai.azure.com"}, "AOS_MODELS__ceo__ENDPOINT"),
        ({"AOS_MODELS__ceo__API": "anthropic"}, "AOS_MODELS__ceo__API"),
        ({"AOS_MODELS__ceo__TIMEOUT_SECONDS": "soon"}, "AOS_MODELS__ceo__TIMEOUT_SECONDS"),
        ({"AOS_MODELS__ceo__TIMEOUT_SECONDS": "0"}, "AOS_MODELS__ceo__TIMEOUT_SECONDS"),
        ({"AOS_MODELS__ceo__TIMEOUT_SECONDS": "nan"}, "AOS_MODELS__ceo__TIMEOUT_SECONDS"),
        ({"AOS_MODELS__ceo__TIMEOUT_SECONDS": "601"}, "AOS_MODELS__ceo__TIMEOUT_SECONDS"),
        ({"AOS_MODELS__ceo__MAX_RETRIES": "-1"}, "AOS_MODELS__ceo__MAX_RETRIES"),
        ({"AOS_MODELS__ceo__MAX_RETRIES": "three"}, "AOS_MODELS__ceo__MAX_RETRIES"),
        ({"AOS_MODELS__ceo__MAX_RETRIES": "11"}, "AOS_MODELS__ceo__MAX_RETRIES"),
        ({"AOS_MODELS__ceo__API_VERSION": "2024 10 21"}, "AOS_MODELS__ceo__API_VERSION"),
        (
            {"AOS_MODELS__ceo__API_KEY": "k", "AOS_MODELS__ceo__CLIENT_ID": "id"},
            "AOS_MODELS__ceo__CLIENT_ID",
        ),
        (
            {"AOS_MODELS__ceo__API": "openai", "AOS_MODELS__ceo__CLIENT_ID": "id"},
            "AOS_MODELS__ceo__CLIENT_ID",
        ),
        ({"AOS_MODELS__ceo__ENDPIONT": "https://x"}, "AOS_MODELS__ceo__ENDPIONT"),
        ({"AOS_MODELS__ENDPOINT": "https://x"}, "AOS_MODELS__ENDPOINT"),
        ({"AOS_MODELS__CEO__DEPLOYMENT": "gpt-4o-mini"}, "AOS_MODELS__CEO__DEPLOYMENT"),
    ],
)
def test_invalid_profiles_name_the_setting(extra: dict[str, str], setting: str) -> None:
    env = {
        "AOS_MODELS__ceo__ENDPOINT": "https://ceo.openai.azure.com",
        "AOS_MODELS__ceo__DEPLOYMENT": "gpt-4o",
    }
    with pytest.raises(ConfigurationError, match=re.escape(setting)):
        settings(**{**env, **extra})


def _readme_settings() -> dict[str, str]:
    """README's configuration table: setting -> its Default cell (without backticks)."""
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]*) \|", README.read_text(), re.MULTILINE)
    return {name: cell.strip().strip("`") for name, cell in rows}


def test_readme_lists_every_setting_with_its_default() -> None:
    documented = _readme_settings()
    for name, (default, _) in SETTINGS_REFERENCE.items():
        assert documented.get(name) == default, name
    for name, (model_default, _) in MODEL_SETTINGS_REFERENCE.items():
        assert documented.get(name) == (model_default or "—"), name
