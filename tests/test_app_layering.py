"""The shape of the app: no module or area of the app imports itself back through others, and
the domain needs nothing but the standard library and shapely. (The device side's layering:
tests/devices/test_layering.py.)"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module this file imports, at the top or inside a function: for
    ``from package import name``, the module ``package.name`` where there is one."""
    found: set[str] = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                is_module = (ROOT / submodule.replace(".", "/")).with_suffix(".py").exists() or (
                    ROOT / submodule.replace(".", "/") / "__init__.py"
                ).exists()
                found.add(submodule if is_module else base)
    return found


def _graph(top: str) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in (ROOT / top).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None (an iterative depth-first search)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
    return None


def test_the_domain_imports_only_itself_and_the_standard_library():
    """Besides the standard library, only shapely (the districts' geometry)."""
    allowed = set(sys.stdlib_module_names) | {"tracecore", "shapely"}
    outside = {
        _module_name(p): sorted(m for m in _imports(p) if m.split(".")[0] not in allowed)
        for p in (ROOT / "tracecore").rglob("*.py")
    }
    assert {k: v for k, v in outside.items() if v} == {}


def test_no_import_cycle_between_modules_of_the_app():
    assert _cycle(_graph("app")) is None


def test_no_import_cycle_between_areas_of_the_app():
    """The app's packages (parties, catalog, codes, events, anomalies, credit, ...) form no
    cycle either: a module of one area never needs a module of an area that needs it. The
    modules at the top of app/ (the factory, the request helpers, the database base) are
    shared ground, not areas; the module check above covers them."""
    packages = {p.parent.name for p in (ROOT / "app").glob("*/__init__.py")}
    areas: dict[str, set[str]] = defaultdict(set)
    for module, imported in _graph("app").items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in packages:
            continue
        for other in imported:
            other_parts = other.split(".")
            if len(other_parts) >= 2 and other_parts[1] in packages and other_parts[1] != parts[1]:
                areas[parts[1]].add(other_parts[1])
    assert _cycle(dict(areas)) is None


def test_the_cycle_finder_finds_a_cycle():
    """The check above can fail."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
