"""The Azure Functions surface of AOS: one blueprint per trigger kind, built around a shared
``AppRuntime``, and ``create_app`` that wires them into a ``FunctionApp``."""
