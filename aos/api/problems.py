"""Errors as RFC 9457 problem details (``application/problem+json``), mapped in one table.

Routes raise AOS errors; ``problem_response`` turns any exception into the right status and body.
The ``errors`` member lists each failing field (JSON Pointer, message, machine-readable type).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from aos.errors import (
    AOSError,
    BusyError,
    ConfigurationError,
    ConflictError,
    FieldError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    PayloadTooLargeError,
    StorageError,
    UnknownOperationError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "MethodNotAllowedError",
    "problem_response",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "urn:aos:problem:"
"""Problem types are URNs: stable identifiers for clients to switch on (listed in the README)."""
logger = logging.getLogger("aos.http")


class MethodNotAllowedError(AOSError):
    """The route exists but not for this method."""

    def __init__(self, method: str, allowed: list[str]) -> None:
        super().__init__(f"{method} is not allowed here; use {', '.join(allowed)}")
        self.allowed = allowed


# Most specific first: the first matching class decides status, slug and title.
_TABLE: tuple[tuple[type[BaseException], int, str, str], ...] = (
    (UnsupportedMediaTypeError, 415, "unsupported-media-type", "Unsupported media type"),
    (PayloadTooLargeError, 413, "payload-too-large", "Payload too large"),
    (InvalidInputError, 400, "invalid-request", "The request is not valid"),
    (NotFoundError, 404, "not-found", "Not found"),
    (ConflictError, 409, "conflict", "Conflict"),
    (LimitExceededError, 422, "limit-exceeded", "A limit would be exceeded"),
    (BusyError, 429, "busy", "Too many requests waiting; try again later"),
    (MethodNotAllowedError, 405, "method-not-allowed", "Method not allowed"),
    (UnknownOperationError, 400, "unsupported-operation", "Operation not supported"),
    (StorageError, 503, "storage-unavailable", "Storage is unavailable"),
    (ConfigurationError, 500, "configuration", "The app is misconfigured"),
)


_NAMES_ERRORS = frozenset({400, 413, 415, 422})


def problem_response(
    exc: BaseException, *, instance: str | None = None, correlation_id: str | None = None
) -> func.HttpResponse:
    match = next((row for row in _TABLE if isinstance(exc, row[0])), None)
    if match is not None:
        _, status, slug, title = match
        detail = str(exc)
    else:
        status, slug, title = 500, "internal", "Internal error"
        detail = "An unexpected error occurred; see the logs for the correlation id."
        logger.error("unhandled error (correlation id %s)", correlation_id, exc_info=exc)
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if isinstance(exc, InvalidInputError) and exc.errors:
        body["errors"] = [e.as_dict() for e in exc.errors]
    elif status in _NAMES_ERRORS:  # every refusal of the request says what to change
        body["errors"] = [FieldError((), detail, slug.replace("-", "_")).as_dict()]
    if isinstance(exc, AOSError):
        body.update({k: v for k, v in exc.extensions.items() if k not in body})
    if correlation_id:
        body["correlation_id"] = correlation_id
    headers = {"Content-Type": PROBLEM_CONTENT_TYPE}
    if correlation_id:
        headers["x-correlation-id"] = correlation_id
    if isinstance(exc, MethodNotAllowedError):
        headers["Allow"] = ", ".join(exc.allowed)
    return func.HttpResponse(json.dumps(body), status_code=status, headers=headers)
