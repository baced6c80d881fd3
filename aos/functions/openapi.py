"""The OpenAPI 3.1 document of the HTTP API, generated from ``OPERATIONS`` and the API models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from aos.functions.api_models import Problem
from aos.functions.routes import FUNCTIONS, OPERATIONS
from aos.version import VERSION

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted: the change is applied asynchronously",
    204: "No content",
    400: "The request is not valid (the failing fields are listed)",
    404: "Unknown agent, goal or letter",
    405: "Method not allowed",
    409: "Conflict with the agent's current state",
    413: "Body over 64 KB",
    415: "Body is not application/json",
    422: "A limit would be exceeded",
    503: "Storage unavailable",
}


def openapi_document(server: str = "/api") -> dict[str, Any]:
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for op in OPERATIONS:
        if op.request_model is not None:
            keys.append((op.request_model, "validation"))
        if op.response_model is not None:
            keys.append((op.response_model, "serialization"))
    keys = list(dict.fromkeys(keys))
    refs, schemas = models_json_schema(keys, ref_template=_REF)
    problem_ref = refs[(Problem, "serialization")]

    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        route = FUNCTIONS[op.function]
        item = paths.setdefault(f"/{route}", {})
        operation: dict[str, Any] = {
            "operationId": op.handler,
            "summary": op.summary,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", route)
            ]
            + [
                {
                    "name": q.name,
                    "in": "query",
                    "description": q.description,
                    "schema": {"type": q.type},
                }
                for q in op.query
            ],
            "responses": {},
        }
        if op.request_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.request_model, "validation")]}},
            }
        success: dict[str, Any] = {"description": _STATUS_TEXT.get(op.status, "OK")}
        if op.response_model is not None:
            success["content"] = {
                "application/json": {"schema": refs[(op.response_model, "serialization")]}
            }
        operation["responses"][str(op.status)] = success
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
