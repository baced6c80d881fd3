"""Turning untrusted input into models, with errors that name every failing field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from aos.errors import InvalidInputError

__all__ = ["parse"]

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse(model: type[ModelT], value: Any, *, what: str | None = None) -> ModelT:
    """``model`` from a model instance, a mapping or ``None`` (treated as an empty object)."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate({} if value is None else value)
    except ValidationError as exc:
        raise InvalidInputError.from_pydantic(
            exc, message=f"Invalid {what or model.__name__}"
        ) from exc
