"""A Python client for the AOS HTTP API: ``AosClient`` (sync) and ``AsyncAosClient`` (asyncio).

::

    from aos.client import AosClient

    with AosClient() as aos:  # AOS_URL and AOS_FUNCTION_KEY, or http://localhost:7071
        aos.register_agent({"agent_id": "cfo", "purpose": "Keep the company financially healthy"})
        aos.send_event("cfo", {"type": "invoice.paid", "data": {"amount": 1200}})
        for record in aos.list_history("cfo"):
            print(record.sequence, record.type)

Every route of the API has a method: agents (``register_agent``, ``put_agent``, ``get_agent``,
``list_agents``, ``update_agent``, ``delete_agent``), goals (``list_goals``, ``add_goal``,
``get_goal``, ``update_goal``, ``remove_goal``), events (``send_event``, ``publish_event``),
history (``list_history``, ``follow_history``), reminders (``list_reminders``, ``set_reminder``,
``cancel_reminder``), messages and turns (``send_message``, ``get_turn``, ``approve_turn``, and
``ask``: send, then ``wait_for_turn`` until the turn is completed, failed or waiting for an
approval), ``evaluate_alignment``, ``health``, ``openapi`` and dead letters (``list_dead_letters``,
``get_dead_letter``, ``replay_dead_letter``, with ``poison=True`` for the poison queue).

    with AosClient() as aos:
        turn = aos.ask("cfo", "How is cash flow?", timeout=60)  # TurnTimeoutError after 60 s
        print(turn.status, turn.reply or turn.error or turn.waiting_for)

Bodies are the route's model (``RegisterAgent``, ``EventIn``, ``GoalCreate``…) or a mapping of
its fields, checked against the model before anything is sent. Answers are the models the
service builds them with (``aos.api.schemas``, ``aos.domain.models``), so client and service cannot
drift apart. Lists are iterators that follow ``nextLink`` page by page.

Errors are the classes of ``aos.errors``, the tree the service itself raises, chosen by the
problem+json ``type`` (else by status); ``status`` and ``problem`` carry the answer:

    ===================================  ======  ===================================
    problem type (``urn:aos:problem:``)  status  raised
    ===================================  ======  ===================================
    ``invalid-request``                  400     ``InvalidInputError`` (``errors``)
    ``payload-too-large``                413     ``PayloadTooLargeError``
    ``unsupported-media-type``           415     ``UnsupportedMediaTypeError``
    ``not-found``                        404     ``NotFoundError``
    ``conflict``                         409     ``ConflictError``
    ``limit-exceeded``                   422     ``LimitExceededError``
    ``busy``                             429     ``BusyError`` (too many turns waiting)
    ``storage-unavailable``              503     ``StorageError``
    anything else, or no answer          any     ``ServiceError`` (see below)
    ===================================  ======  ===================================

The last two payload classes are ``InvalidInputError`` too, and every one is an ``AOSError``.
Other answers are mapped by status where one says enough (400, 404, 409, 413, 415: a host's own
404 for a route it does not serve is a ``NotFoundError``), else they are a ``ServiceError``.
429 and 503 answers are retried (``Retry``: 4 tries, honouring ``Retry-After``) before they raise.
``TurnTimeoutError`` (also a ``TimeoutError``) is the client's own: a turn ``ask`` or
``wait_for_turn`` waited for did not settle in time.
Importing this package imports neither the Azure Functions SDKs nor any Azure Storage SDK.
"""

from aos.api.schemas import (
    AgentDetail,
    AgentPatch,
    AgentResource,
    AlignmentResponse,
    BroadcastAccepted,
    EventAccepted,
    EventIn,
    Health,
    HistoryItem,
    MessageAccepted,
    PendingToolCall,
    PurgeJob,
    RegisterAgent,
    ReplaceAgent,
    ToolCallView,
    TurnResource,
)
from aos.client._async import AsyncAosClient
from aos.client._calls import PROBLEM_TYPES, Retry, TurnTimeoutError
from aos.client._models import DeadLetterItem, DeadLetterReplayed
from aos.client._sync import AosClient
from aos.domain.models import Goal, GoalChanges, GoalCreate
from aos.errors import (
    AOSError,
    BusyError,
    ConflictError,
    FieldError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceError,
    StorageError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "PROBLEM_TYPES",
    "AOSError",
    "AgentDetail",
    "AgentPatch",
    "AgentResource",
    "AlignmentResponse",
    "AosClient",
    "AsyncAosClient",
    "BroadcastAccepted",
    "BusyError",
    "ConflictError",
    "DeadLetterItem",
    "DeadLetterReplayed",
    "EventAccepted",
    "EventIn",
    "FieldError",
    "Goal",
    "GoalChanges",
    "GoalCreate",
    "Health",
    "HistoryItem",
    "InvalidInputError",
    "LimitExceededError",
    "MessageAccepted",
    "NotFoundError",
    "PayloadTooLargeError",
    "PendingToolCall",
    "PurgeJob",
    "RegisterAgent",
    "ReplaceAgent",
    "Retry",
    "ServiceError",
    "StorageError",
    "ToolCallView",
    "TurnResource",
    "TurnTimeoutError",
    "UnsupportedMediaTypeError",
]
