"""Options shared by the host's own storage clients (entity and orchestration tables, queues).

The HTTP transports behind the Azure SDKs (aiohttp, requests) look for proxy settings and a
``.netrc`` file on every request when told to trust the environment, which is their default: for
aiohttp that is a thread-pool hop per request to read the netrc file, measured at about 5% of the
host's CPU on the event path. With no proxy variable set there is nothing to find, so the clients
are told not to look; with one set, they honour it as usual.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["client_options"]

_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "netrc"}


def client_options(**options: Any) -> dict[str, Any]:
    """``options`` plus ``use_env_settings=False`` unless the environment sets a proxy."""
    if any(name.lower() in _PROXY_VARIABLES for name in os.environ):
        return options
    return {**options, "use_env_settings": False}
