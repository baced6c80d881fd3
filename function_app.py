"""The Azure Functions entry point (v2 programming model): wiring only.

Add your own agent kinds here, before the app is built::

    from my_agents import SalesAgent
    kinds.register(SalesAgent)
"""

from aos import AgentKinds, create_app

kinds = AgentKinds.builtin()
app = create_app(kinds)
