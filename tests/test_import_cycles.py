"""No import cycles in emo_core: between its parts (subpackages and top-level modules), and between
the modules inside each subpackage.

Every ``import`` and ``from ... import`` is counted, function-level ones included (a deferred import
hides a cycle from Python, not from a reader): the source is walked with ``ast``, nothing is
imported. A cycle fails with the chain of imports that closes it.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "emo_core" / "emo_core"

#: Edges (importer part -> imported part) known to close a cycle, to be removed; each says why it is
#: still here. The test fails if one of them no longer exists, so the list cannot go stale. Empty:
#: emo_core has no import cycle; keep it so.
KNOWN_PART_EDGES: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """(absolute emo_core module or package name, line) for every import in ``path``."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base, node.lineno
            for alias in node.names:           # "from . import clip" imports the module clip
                yield f"{base}.{alias.name}", node.lineno


def _graphs() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, dict[str, str]]]]:
    """Part-level edges {a: {b: where}} and, per subpackage, module-level edges inside it."""
    modules = {_module_name(p) for p in ROOT.rglob("*.py")}
    parts: dict[str, dict[str, str]] = defaultdict(dict)
    inside: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for path in sorted(ROOT.rglob("*.py")):
        name = _module_name(path)
        if name == "emo_core":
            continue
        source = name.split(".")[1]
        for target, line in _imports(path):
            if not target.startswith("emo_core.") or target not in modules:
                continue                      # "from .x import function": the module line counts
            dest = target.split(".")[1]
            where = f"{name}:{line}"
            if dest != source:
                parts[source].setdefault(dest, where)
            elif target != name and target.count(".") >= 2 and name.count(".") >= 2:
                inside[source][name].setdefault(target, where)
    return parts, inside


def _cycle(edges: dict[str, dict[str, str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative DFS, colours)."""
    colour: dict[str, int] = {}
    for start in sorted(edges):
        if colour.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges.get(start, {}))))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not colour.get(child):
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, {})))))
    return None


def _describe(cycle: list[str], edges: dict[str, dict[str, str]]) -> str:
    return " -> ".join(f"{a} ({edges[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def test_no_cycle_between_the_parts_of_emo_core() -> None:
    parts, _ = _graphs()
    for (a, b), why in KNOWN_PART_EDGES.items():
        assert b in parts.get(a, {}), f"known cycle edge {a} -> {b} ({why}) is gone: remove it from the list"
    pruned = {a: {b: w for b, w in targets.items() if (a, b) not in KNOWN_PART_EDGES} for a, targets in parts.items()}
    cycle = _cycle(pruned)
    assert cycle is None, "import cycle: " + _describe(cycle, pruned)


@pytest.mark.parametrize("package", sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()))
def test_no_cycle_between_the_modules_of_a_subpackage(package: str) -> None:
    _, inside = _graphs()
    edges = inside.get(package, {})
    cycle = _cycle(edges)
    assert cycle is None, f"import cycle in {package}/: " + _describe(cycle, edges)


def test_the_walk_sees_function_level_imports() -> None:
    """The walk is what it claims: a deferred import inside a function is an edge."""
    parts, inside = _graphs()
    # conversions.gaze_target_point imports gaze.geometry inside the function only.
    assert "gaze" in parts["conversions"]
    # people/template.py's load_template does "from . import _template_data" inside the function.
    assert "emo_core.people._template_data" in inside["people"]["emo_core.people.template"]
