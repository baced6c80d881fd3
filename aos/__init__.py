"""AOS: perpetual, purpose-driven agents hosted as Durable entities on Azure Functions.

The public API: what a user writes code against. Everything else is importable from its module
(``aos.domain.models``, ``aos.errors``, ...) but may change. Importing ``aos`` does not import
the Azure Functions SDKs: ``create_app`` and ``AgentManager`` load on first use.
"""

from typing import TYPE_CHECKING, Any

from aos.agents import (
    AgentKinds,
    GenericPurposeDrivenAgent,
    LeadershipAgent,
    PerpetualAgent,
    PurposeDrivenAgent,
    ToolContext,
    tool,
)
from aos.alignment import AlignmentResult, AlignmentScorer
from aos.domain.contexts import ContextMCPServer, ContextStore
from aos.domain.limits import Limits
from aos.domain.models import AgentSpec, Decision, Event, Goal
from aos.errors import (
    AOSError,
    ConflictError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    StorageError,
)
from aos.version import VERSION

__version__ = VERSION

if TYPE_CHECKING:
    from aos.functions.app import create_app
    from aos.manager import AgentManager


def __getattr__(name: str) -> Any:
    # create_app pulls in the Azure Functions SDKs, which scripts, the client and the command line
    # must not import; AgentManager pulls in the services and in-memory adapters, which importing
    # the function app (a cold start) need not pay for.
    if name == "AgentManager":
        from aos.manager import AgentManager

        return AgentManager
    if name == "create_app":
        from aos.functions.app import create_app

        return create_app
    raise AttributeError(f"module 'aos' has no attribute {name!r}")


__all__ = [
    "AOSError",
    "AgentKinds",
    "AgentManager",
    "AgentSpec",
    "AlignmentResult",
    "AlignmentScorer",
    "ConflictError",
    "ContextMCPServer",
    "ContextStore",
    "Decision",
    "Event",
    "GenericPurposeDrivenAgent",
    "Goal",
    "InvalidInputError",
    "LeadershipAgent",
    "LimitExceededError",
    "Limits",
    "NotFoundError",
    "PerpetualAgent",
    "PurposeDrivenAgent",
    "StorageError",
    "ToolContext",
    "__version__",
    "create_app",
    "tool",
]
