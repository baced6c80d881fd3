"""``aos``, the command line: the HTTP API for people and shell scripts, on ``aos.client``.

Exit codes say what happened, so scripts can branch on them:

    ====  ===========================================================================
    0     done
    1     any other error (the service failed, or answered something unexpected)
    2     wrong usage: an unknown command or option, a bad argument (Click's code)
    3     invalid input: the service (or the client, before sending) rejected a field
    4     not found: no such agent, goal, turn, reminder or dead letter
    5     conflict: the agent exists already, or changed concurrently, or the turn waits for
          no approval
    6     limit exceeded: too many goals, or state too large
    7     unavailable: storage unreachable, the app unreachable, or health degraded
    8     the function key is missing or was rejected (401/403)
    9     busy: the agent has too many turns waiting (429); try again later
    10    the turn failed, or did not finish within --timeout (``aos agents ask``)
    ====  ===========================================================================
"""

from __future__ import annotations

import sys

from aos.cli._commands import app
from aos.client import TurnTimeoutError
from aos.errors import (
    AOSError,
    BusyError,
    ConflictError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    ServiceError,
    StorageError,
)

__all__ = ["EXIT_CODES", "app", "exit_code", "main"]

EXIT_CODES: dict[type[AOSError], int] = {
    InvalidInputError: 3,
    NotFoundError: 4,
    ConflictError: 5,
    LimitExceededError: 6,
    StorageError: 7,
    BusyError: 9,
    TurnTimeoutError: 10,
}


def exit_code(error: AOSError) -> int:
    for cls, code in EXIT_CODES.items():
        if isinstance(error, cls):
            return code
    if isinstance(error, ServiceError):
        if error.status in (401, 403):
            return 8
        if error.status is None or error.status in (502, 503, 504):
            return 7
    return 1


def main() -> None:
    """The ``aos`` console script."""
    try:
        app()
    except AOSError as error:
        print(f"aos: error: {error}", file=sys.stderr)
        for field in getattr(error, "errors", ()):
            where = "/".join(str(part) for part in field.loc) or "(body)"
            print(f"  {where}: {field.message}", file=sys.stderr)
        sys.exit(exit_code(error))
    except KeyboardInterrupt:
        sys.exit(130)
