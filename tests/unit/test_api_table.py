"""The HTTP API's table: the paths the host registers and the operations that serve them agree,
and every operation names its handler and models by reference."""

from __future__ import annotations

import inspect

from aos.api.http import OPERATIONS
from aos.api.paths import FUNCTIONS


def test_the_registered_paths_are_exactly_the_operations() -> None:
    served = {(op.function, op.method) for op in OPERATIONS}
    registered = {(name, method) for name, path in FUNCTIONS.items() for method in path.methods}
    assert served == registered
    assert len(served) == len(OPERATIONS)  # one handler per function and method


def test_operations_refer_to_coroutine_handlers_and_models() -> None:
    for op in OPERATIONS:
        assert inspect.iscoroutinefunction(op.handler), op
        for model in (op.request, op.response):
            assert model is None or hasattr(model, "model_json_schema"), op
