"""Reading requests and writing answers for the HTTP API: JSON bodies checked for media type,
size and schema; query parameters; correlation ids; links; JSON responses."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import azure.functions as func
from pydantic import BaseModel, ValidationError

from aos.domain.conversation import TURN_ID_PATTERN
from aos.domain.models import AGENT_ID_PATTERN, full_match
from aos.errors import (
    FieldError,
    InvalidInputError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "CORRELATION_HEADER",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "correlation_id",
    "json_response",
    "link",
    "parse_body",
    "parse_json",
    "path_id",
    "query_int",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 64
"""Nesting levels a JSON body may have. The queue side reads an event with pydantic's
``model_validate_json``, which refuses documents nested deeper than about 200 levels, and the
queue message puts the body's ``data`` one level deeper than the body: refusing at 64 keeps every
accepted body readable there with room to spare."""
CORRELATION_HEADER = "x-correlation-id"
CORRELATION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


def correlation_id(req: func.HttpRequest) -> str:
    """The caller's ``x-correlation-id`` if it is a sane token, else a new one."""
    given = (req.headers.get(CORRELATION_HEADER) or "").strip()
    return given if full_match(CORRELATION_PATTERN, given) else uuid.uuid4().hex


def parse_body(req: func.HttpRequest, model: type[ModelT]) -> ModelT:
    """The JSON body as ``model``: 415 unless JSON, 413 over 64 KB, 400 naming bad fields."""
    body = req.get_body() or b""
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if body and not (content_type == "application/json" or content_type.endswith("+json")):
        raise UnsupportedMediaTypeError(
            f"Send the body as application/json, not {content_type or 'without a Content-Type'}",
            [FieldError(("header", "content-type"), "must be application/json", "media_type")],
        )
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"The body is {len(body)} bytes; the limit is {MAX_BODY_BYTES} "
            "(an event must fit in one 64 KB queue message)"
        )
    if not body.strip():
        raise InvalidInputError(
            "The request needs a JSON body", [FieldError(("body",), "required", "missing")]
        )
    data = parse_json(body)
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


def parse_json(text: bytes | str) -> Any:
    """Strict JSON (RFC 8259) that every later reader of it accepts, or a 400 naming the body:
    no ``NaN``/``Infinity`` and no number too large for a double (``json.loads`` would turn
    them into values ``json.dumps`` writes back as non-JSON), no integer over the 4,300 digits
    Python and pydantic convert, no nesting deeper than ``MAX_JSON_DEPTH``."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise _bad_json(f"nested deeper than {MAX_JSON_DEPTH} levels", "json_depth") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits, NaN
        raise _bad_json(str(exc), "json_invalid") from exc
    if _depth(data) > MAX_JSON_DEPTH:
        raise _bad_json(f"nested deeper than {MAX_JSON_DEPTH} levels", "json_depth")
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a JSON number")
    return value


def _depth(data: Any) -> int:
    """Nesting levels of parsed JSON (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, level + 1)
        stack.extend((item, level + 1) for item in value if isinstance(item, dict | list))
    return deepest


def _bad_json(reason: str, kind: str) -> InvalidInputError:
    return InvalidInputError(
        f"The body is not valid JSON: {reason}", [FieldError(("body",), reason, kind)]
    )


def path_id(req: func.HttpRequest, name: str) -> str:
    """A route parameter that must be an AOS id: 400 before anything touches storage."""
    value = str(req.route_params.get(name, ""))
    if name == "turn_id":
        if not full_match(TURN_ID_PATTERN, value):
            raise InvalidInputError(
                "turn_id must be 'turn-' and 32 hexadecimal digits (as POST …/messages answers)",
                [FieldError(("path", name), "invalid turn id", "string_pattern_mismatch")],
            )
        return value
    if not full_match(AGENT_ID_PATTERN, value):
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
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
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
