"""The function app the thinking end-to-end tests run under `python -m devhost`: the built-in
kinds plus a buyer whose model may order stock, but only with someone's approval."""

from __future__ import annotations

from typing import Any, ClassVar

from aos import AgentKinds, GenericPurposeDrivenAgent, create_app
from aos.agents import ToolContext, tool


class Buyer(GenericPurposeDrivenAgent):
    """Thinks about low stock; ordering needs approval."""

    kind: ClassVar[str] = "buyer"
    thinks_about: ClassVar[tuple[str, ...]] = ("stock.low",)

    @tool(needs_approval=True)
    @staticmethod
    def place_order(call: ToolContext, item: str, quantity: int = 1) -> dict[str, Any]:
        """Order stock from the supplier."""
        return {"ordered": item, "quantity": quantity, "idempotency_key": call.idempotency_key}


kinds = AgentKinds.builtin()
kinds.register(Buyer)
app = create_app(kinds)
