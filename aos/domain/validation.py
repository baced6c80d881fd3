"""Turning untrusted input into models, with errors that name every failing field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from aos.errors import InvalidInputError

__all__ = ["parse", "within_data"]

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")


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


def within_data(build: Callable[[], T]) -> T:
    """``build()``, with the fields of any ``InvalidInputError`` it raises placed under the
    event's ``data`` (a rule about what an event's data must hold names ``data/options``)."""
    try:
        return build()
    except InvalidInputError as exc:
        raise exc.located("data") from exc
