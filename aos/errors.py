"""The one exception tree of AOS.

Every error AOS raises on purpose is an ``AOSError``; the HTTP layer maps each class to a status code
and an RFC 9457 problem type in one table (``aos.api.problems``), so routes never pick codes.

    AOSError
    ├── ConfigurationError (also ValueError)   a setting is missing or invalid; raised at start-up
    ├── InvalidInputError (also ValueError)    a request, message or operation input failed validation
    │   ├── UnknownKindError                   an agent kind that no class is registered for
    │   ├── PayloadTooLargeError               a body or the queue message it makes is too large
    │   └── UnsupportedMediaTypeError          a body that is not JSON by its Content-Type
    ├── NotFoundError                          an agent, goal or dead letter that does not exist
    │   ├── AgentNotFoundError
    │   ├── GoalNotFoundError
    │   └── LetterNotFoundError                no such dead letter (or it was replayed already)
    ├── ConflictError                          the resource already exists / was changed concurrently
    │   └── AgentExistsError
    ├── LimitExceededError                     the change would break a bound (state size, goal count)
    ├── UnknownOperationError                  an entity operation name the agent entity does not know
    ├── HostManagedStateError                  entity state written from outside (the host saves it)
    ├── StorageError                           Azure Storage failed in a way a retry may fix
    │   └── PartialPublishError                a broadcast was queued for some subscribers only
    └── ServiceError                           (aos.client) the service could not be reached, or
                                               answered an error no class above describes

``InvalidInputError`` carries ``errors``: a list of ``FieldError`` (location, message, type) so that
problem+json responses and dead-letter reasons can name every failing field.

The Python client (``aos.client``) raises the same classes for the service's problem+json answers
(``urn:aos:problem:not-found`` is a ``NotFoundError``, and so on: the table is in ``aos.client``);
then ``status`` is the HTTP status and ``problem`` the problem+json body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AOSError",
    "AgentExistsError",
    "AgentNotFoundError",
    "ConfigurationError",
    "ConflictError",
    "FieldError",
    "GoalNotFoundError",
    "HostManagedStateError",
    "InvalidInputError",
    "LetterNotFoundError",
    "LimitExceededError",
    "NotFoundError",
    "PartialPublishError",
    "PayloadTooLargeError",
    "ServiceError",
    "StorageError",
    "UnknownKindError",
    "UnknownOperationError",
    "UnsupportedMediaTypeError",
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One failing field: where it is (``loc`` like ``("body", "purpose")``), what is wrong, and a
    machine-readable ``type`` (pydantic's error type where pydantic found it)."""

    loc: tuple[str | int, ...]
    message: str
    type: str = "value_error"

    @property
    def pointer(self) -> str:
        """The location as a JSON Pointer (RFC 6901), as problem+json clients expect."""
        parts = (str(p).replace("~", "~0").replace("/", "~1") for p in self.loc)
        return "/" + "/".join(parts) if self.loc else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "loc": list(self.loc),
            "pointer": self.pointer,
            "msg": self.message,
            "type": self.type,
        }


class AOSError(Exception):
    """Base of every error AOS raises deliberately."""

    extensions: Mapping[str, Any] = {}
    """Facts a client can act on, added to the problem+json body as extension members."""
    status: int | None = None
    """The HTTP status, when an AOS service answered with this error (``aos.client``)."""
    problem: Mapping[str, Any] | None = None
    """The service's problem+json body, when it answered with this error (``aos.client``)."""


class ConfigurationError(AOSError, ValueError):
    """A setting is missing or invalid. Raised when settings load, naming the setting."""


class InvalidInputError(AOSError, ValueError):
    """Input failed validation. ``errors`` names each failing field."""

    def __init__(self, message: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.errors: tuple[FieldError, ...] = tuple(errors)

    @classmethod
    def from_pydantic(
        cls,
        exc: Any,
        *,
        prefix: tuple[str | int, ...] = (),
        message: str = "Validation failed",
    ) -> InvalidInputError:
        """Translate a ``pydantic.ValidationError`` without importing pydantic here."""
        raw: Iterable[Mapping[str, Any]] = exc.errors(include_url=False, include_input=False)
        errors = [
            FieldError(loc=prefix + tuple(e.get("loc", ())), message=e["msg"], type=e["type"])
            for e in raw
        ]
        summary = "; ".join(f"{'/'.join(map(str, e.loc)) or '(root)'}: {e.message}" for e in errors)
        return cls(f"{message}: {summary}" if summary else message, errors)

    def located(self, *prefix: str | int) -> InvalidInputError:
        """The same error with every field placed under ``prefix`` (``("body",)`` where the
        failing value came from a request body)."""
        errors = [FieldError(prefix + e.loc, e.message, e.type) for e in self.errors]
        return type(self)(str(self), errors) if errors else self


class UnknownKindError(InvalidInputError):
    """No agent class is registered under the requested kind."""


class PayloadTooLargeError(InvalidInputError):
    """A body, or the queue message it would become, is over the size limit."""


class UnsupportedMediaTypeError(InvalidInputError):
    """A body whose Content-Type is not JSON."""


class NotFoundError(AOSError):
    """The addressed resource does not exist."""


class AgentNotFoundError(NotFoundError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"Agent {agent_id!r} is not registered")
        self.agent_id = agent_id


class GoalNotFoundError(NotFoundError):
    def __init__(self, goal_id: str) -> None:
        super().__init__(f"Goal {goal_id!r} does not exist")
        self.goal_id = goal_id


class LetterNotFoundError(NotFoundError):
    def __init__(self, queue: str, letter_id: str) -> None:
        super().__init__(f"No {queue} letter {letter_id!r} (it may have been replayed already)")
        self.letter_id = letter_id


class TurnNotFoundError(NotFoundError):
    def __init__(self, agent_id: str, turn_id: str) -> None:
        super().__init__(f"Agent {agent_id!r} has no turn {turn_id!r}")
        self.turn_id = turn_id


class ConflictError(AOSError):
    """The resource exists already, or changed under a conditional write."""


class AgentExistsError(ConflictError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"Agent {agent_id!r} is already registered")
        self.agent_id = agent_id


class LimitExceededError(AOSError):
    """The change would break one of the bounds that keep entity state small."""


class BusyError(AOSError):
    """Accepting more now would exceed a bound that frees up by itself (an agent's queue of
    waiting turns): try again later (a 429)."""


class UnknownOperationError(AOSError):
    """The agent entity was asked for an operation it does not implement."""


class HostManagedStateError(AOSError):
    """In the app the Durable host saves entity state; it is changed through entity operations."""


class StorageError(AOSError):
    """Azure Storage failed; the caller may retry."""


class PartialPublishError(StorageError):
    """Storage failed after a broadcast was queued for some of its subscribers. Publishing the
    same ``event_id`` again is safe: agents that have the event ignore the repeat."""

    def __init__(self, *, event_id: str, queued: int, subscribers: int) -> None:
        super().__init__(
            f"Storage failed after event {event_id!r} was queued for {queued} of its "
            f"{subscribers} subscribers; publish it again with the same event_id (agents that "
            "have it ignore the repeat)"
        )
        self.extensions = {
            "event_id": event_id,
            "subscribers_queued": queued,
            "subscribers": subscribers,
        }


class ServiceError(AOSError):
    """(``aos.client``) The service could not be reached, or answered with an error that no other
    class describes (a rejected function key, an internal error, a route it does not have)."""
