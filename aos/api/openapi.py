"""The OpenAPI 3.1 document of the HTTP API, generated from its table of operations
(``aos.api.http.OPERATIONS``) and the API models."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from aos.agents.registry import AgentKinds
from aos.api.operations import ApiOperation
from aos.api.paths import PATH_PARAMETERS
from aos.api.schemas import Problem, RegisterAgent, ReplaceAgent
from aos.version import VERSION

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted: the change is applied asynchronously",
    204: "No content",
    400: "The request is not valid (the failing fields are listed)",
    404: "Unknown agent, goal, turn or letter",
    405: "Method not allowed",
    409: "Conflict with the agent's current state",
    413: "Body over 64 KB",
    415: "Body is not application/json",
    422: "A limit would be exceeded",
    429: "Busy: the agent has as many turns waiting as it may; try again later",
    503: "Storage unavailable",
}


def openapi_document(
    operations: Sequence[ApiOperation], server: str = "/api", kinds: Iterable[str] | None = None
) -> dict[str, Any]:
    """The document; ``kinds`` are the agent kinds the app registers (the built-in ones unless
    given), listed as the ``kind`` field's enum so that clients (and fuzzers) see which exist."""
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for op in operations:
        if op.request is not None:
            keys.append((op.request, "validation"))
        if op.response is not None:
            keys.append((op.response, "serialization"))
    keys = list(dict.fromkeys(keys))
    refs, schemas = models_json_schema(keys, ref_template=_REF)
    _array_bounds(schemas)
    known = sorted(AgentKinds.builtin() if kinds is None else kinds)
    for spec in (RegisterAgent, ReplaceAgent):
        schemas["$defs"][spec.__name__]["properties"]["kind"]["enum"] = known
    problem_ref = refs[(Problem, "serialization")]

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        route = op.route
        item = paths.setdefault(f"/{route}", {})
        operation: dict[str, Any] = {
            "operationId": op.handler.__name__,
            "summary": op.summary,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name]}
                for name in re.findall(r"{(\w+)}", route)
            ]
            + [
                {
                    "name": q.name,
                    "in": "query",
                    "description": q.description,
                    "schema": q.schema,
                }
                for q in op.query
            ],
            "responses": {},
        }
        if op.request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.request, "validation")]}},
            }
        for status in (op.status, *op.also):
            success: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "OK")}
            if op.response is not None:
                success["content"] = {
                    "application/json": {"schema": refs[(op.response, "serialization")]}
                }
            elif status == 202:  # a DELETE not applied yet answers what is being removed
                success["content"] = {"application/json": {"schema": {"type": "object"}}}
            operation["responses"][str(status)] = success
        for status in op.errors:
            operation["responses"][str(status)] = {
                "description": _STATUS_TEXT[status],
                "content": {"application/problem+json": {"schema": problem_ref}},
            }
        item[op.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AOS: perpetual agents on Azure Functions",
            "version": VERSION,
            "description": "Register purpose-driven agents, set their goals, send them events.",
        },
        "servers": [{"url": server}],
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
        "security": [{"functionKeyHeader": []}, {"functionKeyQuery": []}],
    }


def _array_bounds(schema: Any) -> None:
    """Pydantic writes a tuple field's ``max_length`` as ``maxLength``, which JSON Schema ignores
    on arrays: say ``maxItems``/``minItems``, which is what validation enforces."""
    if isinstance(schema, dict):
        if schema.get("type") == "array":
            for string_word, array_word in (("maxLength", "maxItems"), ("minLength", "minItems")):
                if string_word in schema:
                    schema[array_word] = schema.pop(string_word)
        for value in schema.values():
            _array_bounds(value)
    elif isinstance(schema, list):
        for value in schema:
            _array_bounds(value)
