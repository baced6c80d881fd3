"""What the function app's functions share: settings, the agent kinds, the entity, storage.

One ``AppRuntime`` belongs to one ``FunctionApp`` (see ``create_app``); nothing here is a module
global. Settings and storage clients are created on first use, so importing the app never touches
configuration or the network, and a configuration error is reported by the first invocation with
the name of the setting at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from aos.agents import AgentKinds
from aos.entity import AgentEntity
from aos.settings import Settings

__all__ = ["AppRuntime"]


class AppRuntime:
    def __init__(
        self,
        kinds: AgentKinds | None = None,
        *,
        load_settings: Callable[[], Settings] = Settings.from_environ,
    ) -> None:
        self.kinds = kinds if kinds is not None else AgentKinds.builtin()
        self._load_settings = load_settings

    @cached_property
    def settings(self) -> Settings:
        return self._load_settings()

    @cached_property
    def entity(self) -> AgentEntity:
        return AgentEntity(self.kinds, self.settings.limits)
