"""Reading requests and writing answers for the HTTP API: JSON bodies checked for media type,
size and schema; query parameters; correlation ids; links; JSON responses."""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import azure.functions as func
from pydantic import BaseModel, ValidationError

from aos.errors import (
    FieldError,
    InvalidInputError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from aos.models import AGENT_ID_PATTERN

__all__ = [
    "CORRELATION_HEADER",
    "MAX_BODY_BYTES",
    "correlation_id",
    "json_response",
    "link",
    "parse_body",
    "path_id",
    "query_int",
]

import re

ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024
CORRELATION_HEADER = "x-correlation-id"
_ID = re.compile(AGENT_ID_PATTERN)
_CORRELATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def correlation_id(req: func.HttpRequest) -> str:
    """The caller's ``x-correlation-id`` if it is a sane token, else a new one."""
    given = (req.headers.get(CORRELATION_HEADER) or "").strip()
    return given if _CORRELATION.match(given) else uuid.uuid4().hex


def parse_body(req: func.HttpRequest, model: type[ModelT]) -> ModelT:
    """The JSON body as ``model``: 415 unless JSON, 413 over 64 KB, 400 naming bad fields."""
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type and not (content_type == "application/json" or content_type.endswith("+json")):
        raise UnsupportedMediaTypeError(
            f"Send the body as application/json, not {content_type}",
            [FieldError(("header", "content-type"), "must be application/json", "media_type")],
        )
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"The body is {len(body)} bytes; the limit is {MAX_BODY_BYTES} "
            "(an event must fit in one 64 KB queue message)"
        )
    if not body.strip():
        raise InvalidInputError(
            "The request needs a JSON body", [FieldError(("body",), "required", "missing")]
        )
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(
            f"The body is not valid JSON: {exc}", [FieldError(("body",), str(exc), "json_invalid")]
        ) from exc
    if not isinstance(data, dict):
        raise InvalidInputError(
            "The body must be a JSON object",
            [FieldError(("body",), "must be an object", "object_type")],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError.from_pydantic(
            exc, prefix=("body",), message="The body is not valid"
        ) from exc


def path_id(req: func.HttpRequest, name: str) -> str:
    """A route parameter that must be an AOS id: 400 before anything touches storage."""
    value = str(req.route_params.get(name, ""))
    if not _ID.match(value):
        raise InvalidInputError(
            f"{name} must be 1-64 characters of letters, digits, '_', '.' or '-', starting with a "
            "letter or digit",
            [FieldError(("path", name), "invalid id", "string_pattern_mismatch")],
        )
    return value


def query_int(req: func.HttpRequest, name: str, *, default: int, low: int, high: int) -> int:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInputError(
            f"{name} must be a whole number from {low} to {high}",
            [FieldError(("query", name), f"must be within [{low}, {high}]", "int_range")],
        )
    return int(raw)


def query_bool(req: func.HttpRequest, name: str) -> bool:
    raw = (req.params.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidInputError(
            f"{name} must be true or false",
            [FieldError(("query", name), "must be true or false", "bool_parsing")],
        )
    return raw in ("true", "1")


def link(req: func.HttpRequest, path: str, **query: Any) -> str:
    """An absolute URL on the same host as the request (``path`` starts after ``/api/``)."""
    parts = urlsplit(req.url)
    params = {k: v for k, v in query.items() if v is not None}
    return str(urlunsplit((parts.scheme, parts.netloc, f"/api/{path}", urlencode(params), "")))


def json_response(
    body: Any,
    *,
    status: int = 200,
    correlation: str | None = None,
    headers: dict[str, str] | None = None,
) -> func.HttpResponse:
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if correlation:
        all_headers[CORRELATION_HEADER] = correlation
    return func.HttpResponse(
        json.dumps(body) if body is not None else None,
        status_code=status,
        headers=all_headers,
    )
