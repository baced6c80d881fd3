"""A local stand-in for the Azure Functions host, for development and tests (not deployed)."""

from devhost.azurite import Azurite, AzuriteError, AzuriteNotInstalledError, AzuriteStartError

__all__ = ["Azurite", "AzuriteError", "AzuriteNotInstalledError", "AzuriteStartError"]
