"""Imports point one way and never loop: no cycle among our modules (imports inside functions
and under ``TYPE_CHECKING`` included, as a reader following the code sees them), and each
package imports only the packages below it (docs/architecture.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge_agent", "drivers", "sitemodel", "yamlread", "dsp")
# Each package and what it may import of ours (what its __init__ says in words).
MAY_IMPORT = {
    "yamlread": set(),
    "dsp": set(),
    "sitemodel": {"dsp", "yamlread"},
    "drivers": {"sitemodel", "dsp", "yamlread"},
    "edge_agent": {"drivers", "sitemodel", "dsp", "yamlread"},
}


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``mods`` it imports anywhere in its source."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                found = resolve(target)
                # a package's __init__ re-exporting its own modules is not a loop
                if found and found != name and not found.startswith(name + "."):
                    graph[name].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


GRAPH = import_graph(modules(ROOT, PACKAGES))


def test_no_import_cycles():
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_lies_below_it(package):
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in {package, *MAY_IMPORT[package]}
    )
    assert wrong == []


def test_every_package_says_what_it_may_import():
    """Each top-level package's docstring names the rule this test holds it to."""
    for package in PACKAGES:
        doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text())) or ""
        assert "import" in doc, package


def test_the_checks_find_a_loop_and_a_wrong_way_import(tmp_path):
    """Not a check that passes because it sees nothing: a lazy import loop and an upward
    import in a small tree of our own are both found."""
    for name, text in {
        "low/__init__.py": "",
        "low/a.py": "def f():\n    from low import b\n",
        "low/b.py": "from .a import f\n",
        "high/__init__.py": "",
        "high/c.py": "import low.a\n",
        "low/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import high.c\n",
    }.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(modules(tmp_path, ("low", "high")))
    assert cycles(graph) == [["low.a", "low.b"]]
    assert graph["low.d"] == {"high.c"} and graph["high.c"] == {"low.a"}
