"""AOS: perpetual, purpose-driven agents hosted as Durable entities on Azure Functions.

The public API. Everything else is an implementation detail and may change.
"""

from aos.agents import (
    AgentKinds,
    GenericPurposeDrivenAgent,
    LeadershipAgent,
    PerpetualAgent,
    PurposeDrivenAgent,
)
from aos.alignment import AlignmentResult, AlignmentScorer, LexicalAlignmentScorer, PurposeProfile
from aos.context import ContextServer, InMemoryContextServer
from aos.document import ContextDocument
from aos.entity import ENTITY_NAME, OPERATIONS, AgentEntity
from aos.errors import (
    AgentExistsError,
    AgentNotFoundError,
    AOSError,
    ConfigurationError,
    ConflictError,
    FieldError,
    GoalNotFoundError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    StorageError,
    UnknownKindError,
    UnknownOperationError,
)
from aos.functions.app import create_app
from aos.limits import Limits
from aos.models import (
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
from aos.settings import Settings

__all__ = [
    "ENTITY_NAME",
    "OPERATIONS",
    "AOSError",
    "AgentContext",
    "AgentEntity",
    "AgentExistsError",
    "AgentKinds",
    "AgentNotFoundError",
    "AgentSpec",
    "AlignmentResult",
    "AlignmentScorer",
    "ConfigurationError",
    "ConflictError",
    "ContextDocument",
    "ContextServer",
    "Decision",
    "DecisionRequest",
    "Event",
    "FieldError",
    "GenericPurposeDrivenAgent",
    "Goal",
    "GoalCreate",
    "GoalNotFoundError",
    "GoalStatus",
    "GoalUpdate",
    "InMemoryContextServer",
    "InvalidInputError",
    "LeadershipAgent",
    "LexicalAlignmentScorer",
    "LimitExceededError",
    "Limits",
    "NotFoundError",
    "PerpetualAgent",
    "PurposeDrivenAgent",
    "PurposeProfile",
    "Settings",
    "SpecUpdate",
    "StorageError",
    "UnknownKindError",
    "UnknownOperationError",
    "create_app",
]
