"""RFC 9457 problem+json responses for errors the host itself produces.

They use the app's problem types (``urn:aos:problem:<slug>``, as ``aos.api.problems``
answers), so that a client sees one vocabulary whether the host or a function refused the
request: a 405 for a method the function is not bound to is ``method-not-allowed`` here as it is
from the app. Refusals of the request (400, 413, 422) carry ``errors`` as the app's do.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = ["PROBLEM_TYPES", "problem"]

PROBLEM_TYPES = {
    400: "invalid-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    422: "limit-exceeded",
    500: "internal",
    501: "not-implemented",
    503: "storage-unavailable",
}
_NAMES_ERRORS = frozenset({400, 413, 415, 422})


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    *,
    type_: str | None = None,
) -> web.Response:
    slug = PROBLEM_TYPES.get(status)
    default = f"urn:aos:problem:{slug}" if slug else "about:blank"
    body: dict[str, Any] = {
        "type": type_ or default,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is None and status in _NAMES_ERRORS:
        errors = [{"loc": [], "pointer": "", "msg": detail, "type": (slug or "").replace("-", "_")}]
    if errors is not None:
        body["errors"] = errors
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/problem+json",
    )
