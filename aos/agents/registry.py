"""Agent kinds by name: which class rebuilds an agent of kind ``"generic"``, ``"leadership"``, ...

A registry is an object the function app owns and passes to its blueprints, not a module-level
table: two apps (or two tests) can register different kinds without seeing each other's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar, overload

from aos.agents.base import PerpetualAgent
from aos.agents.kinds import GenericPurposeDrivenAgent, LeadershipAgent
from aos.domain.models import KIND_PATTERN, full_match
from aos.errors import ConfigurationError, UnknownKindError

__all__ = ["AgentKinds"]

AgentT = TypeVar("AgentT", bound=type[PerpetualAgent])


class AgentKinds(Mapping[str, type[PerpetualAgent]]):
    """A mapping of kind name to agent class, extended with ``register``."""

    def __init__(self, kinds: Mapping[str, type[PerpetualAgent]] | None = None) -> None:
        self._kinds: dict[str, type[PerpetualAgent]] = {}
        for name, cls in (kinds or {}).items():
            self.register(cls, kind=name)

    @classmethod
    def builtin(cls) -> AgentKinds:
        """A new registry holding the kinds AOS ships."""
        return cls(
            {
                GenericPurposeDrivenAgent.kind: GenericPurposeDrivenAgent,
                LeadershipAgent.kind: LeadershipAgent,
                PerpetualAgent.kind: PerpetualAgent,
            }
        )

    @overload
    def register(self, agent_class: AgentT, *, kind: str | None = None) -> AgentT: ...
    @overload
    def register(self, *, kind: str | None = None) -> Callable[[AgentT], AgentT]: ...

    def register(
        self, agent_class: AgentT | None = None, *, kind: str | None = None
    ) -> AgentT | Callable[[AgentT], AgentT]:
        """Register a class under ``kind`` (default: the class's ``kind`` attribute). Usable as
        ``kinds.register(SalesAgent)`` or as a decorator ``@kinds.register(kind="sales")``."""

        def add(cls: AgentT) -> AgentT:
            name = kind or cls.kind
            if not (isinstance(cls, type) and issubclass(cls, PerpetualAgent)):
                raise ConfigurationError(f"{cls!r} is not a PerpetualAgent subclass")
            if not full_match(KIND_PATTERN, name):
                raise ConfigurationError(f"kind {name!r} must match {KIND_PATTERN}")
            registered = self._kinds.get(name)
            if registered is not None and registered is not cls:
                raise ConfigurationError(f"kind {name!r} is already registered to {registered}")
            self._kinds[name] = cls
            return cls

        return add if agent_class is None else add(agent_class)

    def resolve(self, kind: str) -> type[PerpetualAgent]:
        try:
            return self._kinds[kind]
        except KeyError:
            known = ", ".join(sorted(self._kinds))
            raise UnknownKindError(
                f"Unknown agent kind {kind!r}; registered kinds: {known}"
            ) from None

    def __getitem__(self, kind: str) -> type[PerpetualAgent]:
        return self._kinds[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)
