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
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from aos.domain.document import worst_case_state_bytes
from aos.domain.effects import DEFAULT_MAX_HOPS
from aos.domain.limits import Limits
from aos.errors import ConfigurationError

__all__ = ["SETTINGS_REFERENCE", "Settings", "StorageConnection"]

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
        }.items()
    },
    "AOS_HISTORY_RETENTION_DAYS": ("365", "archived history older than this is deleted"),
    "AOS_MAX_HOPS": (
        str(DEFAULT_MAX_HOPS),
        "an event passed on by agents more often than this is dead-lettered",
    ),
}

_LIMIT_SETTINGS = {
    "AOS_RECENT_EVENTS": "recent_events",
    "AOS_RECENT_DECISIONS": "recent_decisions",
    "AOS_PROCESSED_IDS": "processed_ids",
    "AOS_EVENT_PREVIEW_BYTES": "event_preview_bytes",
    "AOS_USER_STATE_BYTES": "user_state_bytes",
    "AOS_MAX_GOALS": "max_goals",
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
    in_azure: bool = False
    local_allowed_hosts: tuple[str, ...] = ()

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

        limit_values: dict[str, str] = {
            attr: get(name) for name, attr in _LIMIT_SETTINGS.items() if env.get(name, "").strip()
        }
        try:
            limits = Limits.model_validate(limit_values)
        except ValidationError as exc:
            names = {attr: name for name, attr in _LIMIT_SETTINGS.items()}
            problems = "; ".join(
                f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigurationError(f"Invalid AOS limits: {problems}") from exc
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
        return cls(
            storage=StorageConnection.from_environ(env),
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
        )
