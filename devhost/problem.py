"""RFC 9457 problem+json responses for errors the host itself produces."""

from __future__ import annotations

import json

from aiohttp import web

__all__ = ["problem"]


def problem(status: int, title: str, detail: str, *, type_: str = "about:blank") -> web.Response:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/problem+json",
    )
