"""Every setting AOS reads, in one typed object, with the same names locally and in Azure.

Storage is reached the way the Functions host itself reaches it: a connection string in
``AzureWebJobsStorage`` (Azurite locally), or the identity-based form in Azure
(``AzureWebJobsStorage__accountName`` or ``__queueServiceUri``/``__tableServiceUri``, with
``__credential=managedidentity`` and ``__clientId`` for a user-assigned identity). Settings load
lazily, on the first invocation that needs them, so importing the app never fails on configuration
and the error names the missing or invalid setting.

Two settings describe where the app runs rather than what it does, so they have no default in
``SETTINGS_REFERENCE``: ``WEBSITE_INSTANCE_ID``, which the platform sets on every Azure instance
(``in_azure``), and ``AOS_DEVHOST_ALLOWED_HOSTS``, Host names a local run accepts besides localhost
(comma-separated; the local host and the MCP endpoint's DNS-rebinding check both read it).

Model profiles (``AOS_MODELS__<adapter>__<FIELD>``, ``MODEL_SETTINGS_REFERENCE``) say which chat
model an agent's turns use: an agent's ``adapter_name`` picks its profile, ``default`` is the
fallback, and with neither the offline model answers. They use the platform's ``__`` nesting (as
``AzureWebJobsStorage__clientId`` does) so that one app setting per field works in the portal, in
Bicep and in ``local.settings.json`` alike. Adapter names match case-insensitively, and ``-`` and
``.`` in them match ``_``, because app setting names on Linux plans hold only letters, digits and
underscores.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from aos.domain.document import worst_case_state_bytes
from aos.domain.effects import DEFAULT_MAX_HOPS
from aos.domain.limits import Limits
from aos.domain.turns import TurnBudget
from aos.errors import ConfigurationError

__all__ = [
    "DEFAULT_MODEL_PROFILE",
    "MODEL_SETTINGS_PREFIX",
    "MODEL_SETTINGS_REFERENCE",
    "SETTINGS_REFERENCE",
    "ModelApi",
    "ModelProfile",
    "Settings",
    "StorageConnection",
]

STORAGE_SETTING = "AzureWebJobsStorage"

# name -> (default, description): every default once (the limits' from ``Limits``); the README's
# configuration table mirrors this (a test compares them).
SETTINGS_REFERENCE: dict[str, tuple[str, str]] = {
    "AOS_TASK_HUB": ("AOSHub", "Durable Functions task hub (host.json reads it as %AOS_TASK_HUB%)"),
    "AOS_EVENTS_QUEUE": ("aos-events", "queue that carries events to agents"),
    "AOS_DEADLETTER_QUEUE": (
        "aos-events-deadletter",
        "queue for messages that can never be valid, with the reason",
    ),
    "AOS_AGENTS_TABLE": ("AOSAgents", "table indexing registered agents and subscriptions"),
    "AOS_HISTORY_TABLE": ("AOSHistory", "table archiving every handled event and decision"),
    "AOS_DEADLETTER_TABLE": (
        "AOSDeadLetters",
        "table listing dead-lettered and poisoned messages for inspection and replay",
    ),
    **{
        name: (str(Limits.model_fields[attr].default), description)
        for name, (attr, description) in {
            "AOS_RECENT_EVENTS": ("recent_events", "events kept in the entity's window"),
            "AOS_RECENT_DECISIONS": ("recent_decisions", "decisions kept in the entity's window"),
            "AOS_PROCESSED_IDS": (
                "processed_ids",
                "event/decision ids remembered for de-duplication",
            ),
            "AOS_EVENT_PREVIEW_BYTES": (
                "event_preview_bytes",
                "event data kept in the window up to this JSON size",
            ),
            "AOS_USER_STATE_BYTES": (
                "user_state_bytes",
                "budget for spec + goals + key/value state",
            ),
            "AOS_MAX_GOALS": ("max_goals", "goals per agent"),
            "AOS_CONVERSATION_BYTES": (
                "conversation_bytes",
                "conversation window a thinking agent keeps in its state",
            ),
        }.items()
    },
    "AOS_HISTORY_RETENTION_DAYS": ("365", "archived history older than this is deleted"),
    "AOS_MAX_HOPS": (
        str(DEFAULT_MAX_HOPS),
        "an event passed on by agents more often than this is dead-lettered",
    ),
    **{
        name: (str(TurnBudget.model_fields[attr].default), description)
        for name, (attr, description) in {
            "AOS_TURN_MAX_STEPS": ("max_steps", "model steps one turn may take"),
            "AOS_TURN_MAX_TOKENS": ("max_tokens", "model tokens one turn may use"),
            "AOS_TURN_TIMEOUT_SECONDS": ("max_seconds", "how long one turn may run"),
            "AOS_APPROVAL_TIMEOUT_SECONDS": (
                "approval_timeout_seconds",
                "how long a tool call waits for approval before it is refused",
            ),
        }.items()
    },
}

_TURN_SETTINGS = {
    "AOS_TURN_MAX_STEPS": "max_steps",
    "AOS_TURN_MAX_TOKENS": "max_tokens",
    "AOS_TURN_TIMEOUT_SECONDS": "max_seconds",
    "AOS_APPROVAL_TIMEOUT_SECONDS": "approval_timeout_seconds",
}

MODEL_SETTINGS_PREFIX = "AOS_MODELS__"
DEFAULT_MODEL_PROFILE = "default"
DEFAULT_MODEL_API_VERSION = "2024-10-21"  # the current GA Azure OpenAI data-plane version

ModelApi = Literal["azure_openai", "openai"]
_MODEL_APIS: tuple[ModelApi, ...] = get_args(ModelApi)

# name -> (default or None, description), for every profile: ``<adapter>`` is an agent's
# ``adapter_name`` or ``default``. The README's configuration table lists these rows too.
MODEL_SETTINGS_REFERENCE: dict[str, tuple[str | None, str]] = {
    "AOS_MODELS__<adapter>__ENDPOINT": (
        None,
        "the model endpoint: the Azure OpenAI / Foundry resource URL, or an OpenAI-compatible "
        "base URL (e.g. http://127.0.0.1:8000/v1)",
    ),
    "AOS_MODELS__<adapter>__DEPLOYMENT": (
        None,
        "the Azure OpenAI deployment, or the model name for the openai API",
    ),
    "AOS_MODELS__<adapter>__API": ("azure_openai", "azure_openai or openai"),
    "AOS_MODELS__<adapter>__API_KEY": (
        None,
        "a key; without one, azure_openai uses Microsoft Entra ID (managed identity)",
    ),
    "AOS_MODELS__<adapter>__API_VERSION": (
        DEFAULT_MODEL_API_VERSION,
        "the Azure OpenAI data-plane api-version",
    ),
    "AOS_MODELS__<adapter>__CLIENT_ID": (
        None,
        "the client id of a user-assigned managed identity (azure_openai without a key)",
    ),
    "AOS_MODELS__<adapter>__TIMEOUT_SECONDS": (
        "60",
        "how long one HTTP attempt may wait (connect, or between bytes of the answer)",
    ),
    "AOS_MODELS__<adapter>__MAX_RETRIES": (
        "3",
        "retries of a throttled (429), failed (5xx) or timed-out attempt, after retry-after",
    ),
}
_MODEL_FIELDS = {name.rsplit("__", 1)[1] for name in MODEL_SETTINGS_REFERENCE}
_MAX_MODEL_TIMEOUT_SECONDS = 600.0
_MAX_MODEL_RETRIES = 10


def _profile_key(name: str) -> str:
    """The one spelling of a profile name that settings and adapter names are compared in."""
    return name.strip().lower().replace("-", "_").replace(".", "_")


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """One model endpoint, from the ``AOS_MODELS__<name>__*`` settings.

    ``api_key`` is left out of ``repr`` so that a logged profile never carries the key.
    """

    name: str
    endpoint: str
    deployment: str
    api: ModelApi = "azure_openai"
    api_key: str | None = field(default=None, repr=False)
    api_version: str = DEFAULT_MODEL_API_VERSION
    client_id: str | None = None
    timeout_seconds: float = 60.0
    max_retries: int = 3

    @classmethod
    def from_settings(cls, name: str, values: Mapping[str, str]) -> ModelProfile:
        """A profile from its settings (``values``: field -> value, e.g. ``ENDPOINT``).

        Every problem raises ``ConfigurationError`` naming the setting when settings load, as for
        every other setting, so a typo in the portal is reported instead of an agent silently
        thinking with the offline model.
        """

        def setting(field_name: str) -> str:
            return f"{MODEL_SETTINGS_PREFIX}{name}__{field_name}"

        def value(field_name: str) -> str:
            default = MODEL_SETTINGS_REFERENCE[f"{MODEL_SETTINGS_PREFIX}<adapter>__{field_name}"][0]
            return values.get(field_name, "").strip() or (default or "")

        api_text = value("API").lower()
        api = next((a for a in _MODEL_APIS if a == api_text), None)
        if api is None:
            raise ConfigurationError(
                f"{setting('API')} must be one of {', '.join(_MODEL_APIS)}, not {api_text!r}"
            )
        endpoint = value("ENDPOINT")
        if not endpoint:
            raise ConfigurationError(
                f"{setting('ENDPOINT')} is not set, but other {MODEL_SETTINGS_PREFIX}{name}__* "
                "settings are: a model profile needs an endpoint"
            )
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"{setting('ENDPOINT')} must be an http(s) URL, e.g. "
                "https://<resource>.openai.azure.com or http://127.0.0.1:8000/v1"
            )
        deployment = value("DEPLOYMENT")
        if not deployment:
            what = "the deployment name" if api == "azure_openai" else "the model name"
            raise ConfigurationError(f"{setting('DEPLOYMENT')} is not set: it is {what}")
        api_key = value("API_KEY") or None
        client_id = value("CLIENT_ID") or None
        if client_id and (api_key or api == "openai"):
            raise ConfigurationError(
                f"{setting('CLIENT_ID')} selects a managed identity, which only azure_openai "
                f"without {setting('API_KEY')} uses: remove one of them"
            )
        api_version = value("API_VERSION")
        if any(c.isspace() for c in api_version):
            raise ConfigurationError(
                f"{setting('API_VERSION')} must be a version such as 2024-10-21"
            )
        timeout_text = value("TIMEOUT_SECONDS")
        try:
            timeout = float(timeout_text)
        except ValueError:
            timeout = math.nan
        if not 0 < timeout <= _MAX_MODEL_TIMEOUT_SECONDS:  # also refuses nan
            raise ConfigurationError(
                f"{setting('TIMEOUT_SECONDS')} must be a number of seconds above 0 and at most "
                f"{_MAX_MODEL_TIMEOUT_SECONDS:g}, not {timeout_text!r}"
            )
        retries_text = value("MAX_RETRIES")
        if not retries_text.isdigit() or int(retries_text) > _MAX_MODEL_RETRIES:
            raise ConfigurationError(
                f"{setting('MAX_RETRIES')} must be a whole number from 0 to {_MAX_MODEL_RETRIES}, "
                f"not {retries_text!r}"
            )
        return cls(
            name=name,
            api=api,
            endpoint=endpoint,
            deployment=deployment,
            api_key=api_key,
            api_version=api_version,
            client_id=client_id,
            timeout_seconds=timeout,
            max_retries=int(retries_text),
        )


def _model_profiles(env: Mapping[str, str]) -> Mapping[str, ModelProfile]:
    """Every ``AOS_MODELS__<name>__<FIELD>`` setting, grouped into profiles by name."""
    grouped: dict[str, tuple[str, dict[str, str]]] = {}
    prefix = MODEL_SETTINGS_PREFIX.lower()
    for key, value in env.items():
        if not key.lower().startswith(prefix):
            continue
        name, _, field_name = key[len(prefix) :].rpartition("__")
        field_name = field_name.upper()
        if not name or field_name not in _MODEL_FIELDS:
            raise ConfigurationError(
                f"{key} is not a model setting: use {MODEL_SETTINGS_PREFIX}<adapter>__<FIELD> "
                f"with FIELD one of {', '.join(sorted(_MODEL_FIELDS))}"
            )
        spelled, values = grouped.setdefault(_profile_key(name), (name, {}))
        if spelled != name and field_name in values:
            raise ConfigurationError(
                f"{key} and {MODEL_SETTINGS_PREFIX}{spelled}__{field_name} name the same "
                "profile (names match case-insensitively, with - and . as _): keep one"
            )
        values[field_name] = value
    profiles = {
        key: ModelProfile.from_settings(spelled, values)
        for key, (spelled, values) in grouped.items()
        if any(v.strip() for v in values.values())  # all empty: the profile is switched off
    }
    return MappingProxyType(profiles)


_LIMIT_SETTINGS = {
    "AOS_RECENT_EVENTS": "recent_events",
    "AOS_RECENT_DECISIONS": "recent_decisions",
    "AOS_PROCESSED_IDS": "processed_ids",
    "AOS_EVENT_PREVIEW_BYTES": "event_preview_bytes",
    "AOS_USER_STATE_BYTES": "user_state_bytes",
    "AOS_MAX_GOALS": "max_goals",
    "AOS_CONVERSATION_BYTES": "conversation_bytes",
}


@dataclass(frozen=True, slots=True)
class StorageConnection:
    """How to reach Azure Storage: a connection string, or endpoints plus a credential."""

    connection_string: str | None = None
    queue_endpoint: str | None = None
    table_endpoint: str | None = None
    client_id: str | None = None
    problem: str | None = None
    """Why storage cannot be used (set when the settings name none). The entity function needs
    no storage, so a missing setting fails the first storage call, naming the setting, rather
    than every entity operation."""

    @property
    def configured(self) -> bool:
        return self.problem is None

    def require(self) -> None:
        if self.problem is not None:
            raise ConfigurationError(self.problem)

    @classmethod
    def from_environ(cls, env: Mapping[str, str], name: str = STORAGE_SETTING) -> StorageConnection:
        if value := env.get(name, "").strip():
            if value == "UseDevelopmentStorage=true":
                value = _AZURITE_DEFAULT
            return cls(connection_string=value)
        account = env.get(f"{name}__accountName", "").strip()
        queue = env.get(f"{name}__queueServiceUri", "").strip() or (
            f"https://{account}.queue.core.windows.net" if account else ""
        )
        table = env.get(f"{name}__tableServiceUri", "").strip() or (
            f"https://{account}.table.core.windows.net" if account else ""
        )
        if not queue or not table:
            return cls(
                problem=f"Storage is not configured: set {name} (a connection string) or "
                f"{name}__accountName (identity-based, as in Azure)"
            )
        return cls(
            queue_endpoint=queue,
            table_endpoint=table,
            client_id=env.get(f"{name}__clientId") or None,
        )

    def credential(self, *, sync: bool = False) -> Any:
        """The Entra credential for identity-based connections (imported only when used)."""
        if sync:
            from azure.identity import DefaultAzureCredential as SyncCredential

            return SyncCredential(managed_identity_client_id=self.client_id)
        from azure.identity.aio import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self.client_id)


_AZURITE_DEFAULT = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


ModelT = TypeVar("ModelT", bound=BaseModel)


def _from_settings(
    model: type[ModelT], settings: Mapping[str, str], env: Mapping[str, str], what: str
) -> ModelT:
    """``model`` from the app settings named in ``settings`` (setting -> field); those not set
    keep the model's defaults, and an invalid one is a ``ConfigurationError`` naming it."""
    values = {
        attr: env[name].strip() for name, attr in settings.items() if env.get(name, "").strip()
    }
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        names = {attr: name for name, attr in settings.items()}
        problems = "; ".join(
            f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"{what}: {problems}") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    storage: StorageConnection
    task_hub: str = SETTINGS_REFERENCE["AOS_TASK_HUB"][0]
    events_queue: str = SETTINGS_REFERENCE["AOS_EVENTS_QUEUE"][0]
    deadletter_queue: str = SETTINGS_REFERENCE["AOS_DEADLETTER_QUEUE"][0]
    agents_table: str = SETTINGS_REFERENCE["AOS_AGENTS_TABLE"][0]
    history_table: str = SETTINGS_REFERENCE["AOS_HISTORY_TABLE"][0]
    deadletter_table: str = SETTINGS_REFERENCE["AOS_DEADLETTER_TABLE"][0]
    history_retention_days: int = int(SETTINGS_REFERENCE["AOS_HISTORY_RETENTION_DAYS"][0])
    max_hops: int = DEFAULT_MAX_HOPS
    limits: Limits = field(default_factory=Limits)
    turn_budget: TurnBudget = field(default_factory=TurnBudget)
    in_azure: bool = False
    local_allowed_hosts: tuple[str, ...] = ()
    models: Mapping[str, ModelProfile] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    """Model profiles by name (lower case, ``-`` and ``.`` as ``_``); see ``model_profile``. Left
    out of the hash (a mapping has none), so settings stay usable as a cache key."""

    def model_profile(self, adapter_name: str) -> ModelProfile | None:
        """The profile an agent with this ``adapter_name`` thinks with: its own, else
        ``default``, else None (the offline model answers)."""
        return self.models.get(_profile_key(adapter_name)) or self.models.get(DEFAULT_MODEL_PROFILE)

    @property
    def poison_queue(self) -> str:
        """The queue the Functions host moves a message to after ``maxDequeueCount`` failures."""
        return f"{self.events_queue}-poison"

    @property
    def maintenance_queue(self) -> str:
        """The queue whose messages run purges (``DELETE /api/agents/{id}?purge=true``)."""
        return f"{self.events_queue}-maintenance"

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str:
            return env.get(name, "").strip() or SETTINGS_REFERENCE[name][0]

        limits = _from_settings(Limits, _LIMIT_SETTINGS, env, "Invalid AOS limits")
        worst = worst_case_state_bytes(limits)
        if worst > limits.max_state_bytes:
            raise ConfigurationError(
                f"These limits allow entity state of {worst} bytes, over the "
                f"{limits.max_state_bytes}-byte cap: lower AOS_RECENT_EVENTS, "
                "AOS_RECENT_DECISIONS, AOS_PROCESSED_IDS, AOS_EVENT_PREVIEW_BYTES or "
                "AOS_USER_STATE_BYTES"
            )
        retention = get("AOS_HISTORY_RETENTION_DAYS")
        if not retention.isdigit() or int(retention) < 1:
            raise ConfigurationError("AOS_HISTORY_RETENTION_DAYS must be a whole number >= 1")
        max_hops = get("AOS_MAX_HOPS")
        if not max_hops.isdigit() or not 1 <= int(max_hops) <= 1000:
            raise ConfigurationError("AOS_MAX_HOPS must be a whole number from 1 to 1000")
        turn_budget = _from_settings(TurnBudget, _TURN_SETTINGS, env, "Invalid turn budget")
        return cls(
            storage=StorageConnection.from_environ(env),
            turn_budget=turn_budget,
            task_hub=get("AOS_TASK_HUB"),
            events_queue=get("AOS_EVENTS_QUEUE"),
            deadletter_queue=get("AOS_DEADLETTER_QUEUE"),
            agents_table=get("AOS_AGENTS_TABLE"),
            history_table=get("AOS_HISTORY_TABLE"),
            deadletter_table=get("AOS_DEADLETTER_TABLE"),
            history_retention_days=int(retention),
            max_hops=int(max_hops),
            limits=limits,
            in_azure=bool(env.get("WEBSITE_INSTANCE_ID", "").strip()),
            local_allowed_hosts=tuple(
                h.strip() for h in env.get("AOS_DEVHOST_ALLOWED_HOSTS", "").split(",") if h.strip()
            ),
            models=_model_profiles(env),
        )
