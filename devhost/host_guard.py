"""Refuse requests a web page could send: DNS rebinding (a foreign ``Host``) and cross-site calls
(a foreign ``Origin``).

The local host listens on loopback and checks no keys, so any page the developer opens could
otherwise drive it: a cross-site ``fetch`` POST reaches it directly, and a DNS-rebinding name that
resolves to 127.0.0.1 even reads the answers. So every request (the app's routes and the durable
webhooks alike) must name an allowed host in ``Host`` (any port): ``localhost``, ``127.0.0.1``,
``[::1]``, plus the names in ``AOS_DEVHOST_ALLOWED_HOSTS`` (comma-separated; ``*`` allows any, for
a host reached through a container or tunnel). A request with an ``Origin`` header (browsers add it
to cross-site and to non-GET requests) must come from an http(s) origin on an allowed host. Others
get 403 problem+json. Requests without ``Host`` (not something a browser sends) pass.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web

from devhost.problem import problem

__all__ = ["ALLOWED_HOSTS_SETTING", "DEFAULT_HOSTS", "HostGuard", "allowed_hosts_from_env"]

ALLOWED_HOSTS_SETTING = "AOS_DEVHOST_ALLOWED_HOSTS"
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "[::1]")
FORBIDDEN_HOST = "urn:aos:problem:forbidden-host"
FORBIDDEN_ORIGIN = "urn:aos:problem:forbidden-origin"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def allowed_hosts_from_env() -> tuple[str, ...]:
    raw = os.environ.get(ALLOWED_HOSTS_SETTING, "")
    return tuple(h.strip() for h in raw.split(",") if h.strip())


def _hostname(authority: str) -> str:
    """``host[:port]`` without the port, lower-case; IPv6 literals keep their brackets."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority.split("]", 1)[0] + "]"
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


class HostGuard:
    def __init__(self, extra_hosts: Iterable[str] = ()) -> None:
        extra = {_hostname(h) for h in extra_hosts}
        self.any_host = "*" in extra
        self.hosts = frozenset(DEFAULT_HOSTS) | {h for h in extra if h != "*"} | {"::1"}

    def host_allowed(self, authority: str) -> bool:
        return self.any_host or _hostname(authority) in self.hosts

    def origin_allowed(self, origin: str) -> bool:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # includes "null" (sandboxed frames, file: pages)
        return self.host_allowed(parts.netloc)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if host is not None and not self.host_allowed(host):
            return _forbidden(
                FORBIDDEN_HOST,
                "Host not allowed",
                f"Host {host!r} is not served by the local host; add it to "
                f"{ALLOWED_HOSTS_SETTING} if you really reach it under that name",
            )
        origin = request.headers.get("Origin")
        if origin is not None and not self.origin_allowed(origin):
            return _forbidden(
                FORBIDDEN_ORIGIN,
                "Origin not allowed",
                f"Cross-site request from {origin!r} refused; allowed are http(s) origins on "
                f"{', '.join(sorted(self.hosts))} or {ALLOWED_HOSTS_SETTING}",
            )
        return await handler(request)


def _forbidden(type_: str, title: str, detail: str) -> web.Response:
    return problem(403, title, detail, type_=type_)
