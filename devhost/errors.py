"""The local host's exception tree (every error it raises on purpose).

DevHostError
├── ConfigurationError (also ValueError)   bad local.settings / host.json / missing setting
├── AppLoadError                            function_app could not be imported or indexed
├── AzuriteError (devhost.azurite)          the emulator could not be started
└── EntityStateTooLargeError               an entity state exceeds what one partition can hold
"""

from __future__ import annotations

__all__ = ["AppLoadError", "ConfigurationError", "DevHostError", "EntityStateTooLargeError"]


class DevHostError(Exception):
    """Base class for errors raised by the local host."""


class ConfigurationError(DevHostError, ValueError):
    """A setting is missing or malformed; the message names it."""


class AppLoadError(DevHostError):
    """The function app module could not be imported or its functions listed."""


class EntityStateTooLargeError(DevHostError):
    """The serialised entity state does not fit the host's storage limit (never truncated)."""
