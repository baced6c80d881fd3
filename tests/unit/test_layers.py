"""No import cycles among AOS's modules (the layer contracts in pyproject.toml, run by
`lint-imports` in scripts/check, keep imports pointing down; this keeps each layer acyclic).
Imports made only for type checking (``if TYPE_CHECKING:``) never run, so they are left out: a
module may name a type of the module that imports it (``aos.agents.thinking`` annotates with
``PerpetualAgent``, whose ``request_turn`` uses it)."""

from __future__ import annotations

import grimp


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph("aos", exclude_type_checking_imports=True)
    cycles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if graph.find_shortest_chain(importer=imported, imported=module)
        }
    )
    assert cycles == []
