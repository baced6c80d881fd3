"""Where the service is and how to authenticate, shared by both clients."""

from __future__ import annotations

import os

from aos.version import VERSION

DEFAULT_URL = "http://localhost:7071"
DEFAULT_TIMEOUT = 30.0
"""Seconds; writes wait up to 10 s for the agent to show the change."""
URL_VARIABLE = "AOS_URL"
KEY_VARIABLE = "AOS_FUNCTION_KEY"


def resolve_url(base_url: str | None) -> str:
    """The app's root URL: ``base_url``, else ``AOS_URL``, else the local host. A trailing
    ``/api`` is accepted and dropped (routes add it)."""
    url = (base_url or os.environ.get(URL_VARIABLE) or DEFAULT_URL).strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url.removesuffix("/api")


def headers(function_key: str | None) -> dict[str, str]:
    key = function_key if function_key is not None else os.environ.get(KEY_VARIABLE)
    found = {"user-agent": f"aos-client/{VERSION}", "accept": "application/json"}
    if key:
        found["x-functions-key"] = key
    return found
