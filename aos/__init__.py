"""AOS: perpetual, purpose-driven agents hosted as Durable entities on Azure Functions.

The public API. Everything else is an implementation detail and may change.
"""

from typing import TYPE_CHECKING, Any

from aos.agents import (
    AgentKinds,
    GenericPurposeDrivenAgent,
    LeadershipAgent,
    PerpetualAgent,
    PurposeDrivenAgent,
)
from aos.agents.entity import ENTITY_NAME, OPERATIONS, AgentEntity
from aos.alignment import AlignmentResult, AlignmentScorer, LexicalAlignmentScorer, PurposeProfile
from aos.domain.contexts import ContextMCPServer, ContextServer, InMemoryContextServer
from aos.domain.document import ContextDocument
from aos.domain.history import (
    HistoryArchive,
    HistoryPage,
    HistoryQuery,
    HistoryRecord,
    InMemoryHistoryArchive,
)
from aos.domain.limits import Limits
from aos.domain.models import (
    AgentContext,
    AgentSpec,
    Decision,
    DecisionRequest,
    Event,
    Goal,
    GoalCreate,
    GoalStatus,
    GoalUpdate,
    SpecUpdate,
)
from aos.errors import (
    AgentExistsError,
    AgentNotFoundError,
    AgentNotReadyError,
    AOSError,
    ConfigurationError,
    ConflictError,
    FieldError,
    GoalNotFoundError,
    HostManagedStateError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    PayloadTooLargeError,
    StorageError,
    UnknownKindError,
    UnknownOperationError,
    UnsupportedMediaTypeError,
)
from aos.services.contexts import EntityContextServer
from aos.settings import Settings
from aos.version import VERSION

__version__ = VERSION

if TYPE_CHECKING:
    from aos.functions.app import create_app
    from aos.services.agents import AgentManager


def __getattr__(name: str) -> Any:
    # AgentManager pulls in the storage adapters; load it when asked for, so that importing the
    # function app (a cold start) does not pay for them before the first request. create_app pulls
    # in the Azure Functions SDKs, which the client and the command line (aos.client, aos.cli) must
    # not import.
    if name == "AgentManager":
        from aos.services.agents import AgentManager

        return AgentManager
    if name == "create_app":
        from aos.functions.app import create_app

        return create_app
    raise AttributeError(f"module 'aos' has no attribute {name!r}")


__all__ = [
    "ENTITY_NAME",
    "OPERATIONS",
    "AOSError",
    "AgentContext",
    "AgentEntity",
    "AgentExistsError",
    "AgentKinds",
    "AgentManager",
    "AgentNotFoundError",
    "AgentNotReadyError",
    "AgentSpec",
    "AlignmentResult",
    "AlignmentScorer",
    "ConfigurationError",
    "ConflictError",
    "ContextDocument",
    "ContextMCPServer",
    "ContextServer",
    "Decision",
    "DecisionRequest",
    "EntityContextServer",
    "Event",
    "FieldError",
    "GenericPurposeDrivenAgent",
    "Goal",
    "GoalCreate",
    "GoalNotFoundError",
    "GoalStatus",
    "GoalUpdate",
    "HistoryArchive",
    "HistoryPage",
    "HistoryQuery",
    "HistoryRecord",
    "HostManagedStateError",
    "InMemoryContextServer",
    "InMemoryHistoryArchive",
    "InvalidInputError",
    "LeadershipAgent",
    "LexicalAlignmentScorer",
    "LimitExceededError",
    "Limits",
    "NotFoundError",
    "PayloadTooLargeError",
    "PerpetualAgent",
    "PurposeDrivenAgent",
    "PurposeProfile",
    "Settings",
    "SpecUpdate",
    "StorageError",
    "UnknownKindError",
    "UnknownOperationError",
    "UnsupportedMediaTypeError",
    "__version__",
    "create_app",
]
