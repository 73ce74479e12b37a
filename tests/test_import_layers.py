"""No import circles between edgecnn's packages: what two packages share lives in one home below both.

Every import counts, those inside functions (which only hide a circle from the
interpreter) and under ``TYPE_CHECKING`` included. A node is a subpackage
(``edgecnn.export``) or a top-level module (``edgecnn.cli``).
"""
from __future__ import annotations

import ast
from pathlib import Path

import edgecnn

PACKAGE = Path(edgecnn.__file__).parent


def _node(module: str) -> str:
    """``edgecnn.export.onnx`` -> ``export``; ``edgecnn.cli`` -> ``cli``."""
    return module.split(".")[1] if module.count(".") >= 1 else "edgecnn"


def _imports(path: Path) -> set[str]:
    """The edgecnn modules this file imports, absolute."""
    parts = ["edgecnn", *path.relative_to(PACKAGE).with_suffix("").parts]
    here = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("edgecnn.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
                found |= {f"{module}.{alias.name}" if not node.module and len(base) == 1 else module
                          for alias in node.names}
            elif node.module and node.module.startswith("edgecnn."):
                found.add(node.module)
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        source = _node(".".join(["edgecnn", *path.relative_to(PACKAGE).with_suffix("").parts]))
        if source == "__init__":
            continue
        graph.setdefault(source, set())
        graph[source] |= {_node(module) for module in _imports(path)} - {source, "edgecnn", "__init__"}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each circle found by a depth-first walk, as the path that closes it."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_packages_import_each_other_without_circles():
    assert cycles(package_graph()) == []


def test_the_check_sees_a_circle():
    assert cycles({"export": {"quantize"}, "quantize": {"convert", "export"}, "convert": set()}) == [
        ["export", "quantize", "export"]]
