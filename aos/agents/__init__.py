"""Agent classes and the kind registry."""

from aos.agents.base import PerpetualAgent
from aos.agents.kinds import GenericPurposeDrivenAgent, LeadershipAgent
from aos.agents.purpose import PurposeDrivenAgent
from aos.agents.registry import AgentKinds
from aos.agents.tools import ToolContext, tool

__all__ = [
    "AgentKinds",
    "GenericPurposeDrivenAgent",
    "LeadershipAgent",
    "PerpetualAgent",
    "PurposeDrivenAgent",
    "ToolContext",
    "tool",
]
