"""The package's import graph: layers import only downward, and there are no cycles.

    cli -> output -> results -> sim -> (io, errors)

A module may import from its own layer or a lower one.  Every import counts, at module
level or inside a function: a function-level import that runs upward is still a cycle
waiting for the day someone moves it to the top.  The graph comes from the AST, so the
test needs no third-party tool and sees code that never runs in the suite.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xcfbench"

# Lowest first.  The top-level modules __init__ and __main__ are outside the layers.
LAYERS = ("errors", "io", "sim", "results", "output", "cli")
RANK = {"errors": 0, "io": 0, "sim": 1, "results": 2, "output": 3, "cli": 4}


def module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (resolved to modules, not names)."""
    modules = {module_name(root, p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_pkg else name.split(".")[:-1]
                    here = here[: len(here) - node.level + 1]
                    base = ".".join(here + ([base] if base else []))
                targets.add(base)
                # "from pkg import module" names a module, not an attribute
                targets.update(f"{base}.{a.name}" for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            a, b = layer(src), layer(dst)
            if a is not None and b is not None and RANK[b] > RANK[a]:
                bad.append(f"{src} -> {dst}")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_cycles_in_the_package():
    assert cycles(import_graph(PACKAGE)) == []


def test_layers_import_only_downward():
    assert upward_imports(import_graph(PACKAGE)) == []


def test_every_layer_is_a_folder_or_module():
    for name in LAYERS:
        assert (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file(), name


def test_the_checks_catch_a_cycle_and_an_upward_import(tmp_path):
    """The same checks on a small package with one cycle and one upward import."""
    pkg = tmp_path / "xcfbench"
    for folder in ("sim", "cli"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "sim" / "a.py").write_text("from xcfbench.sim import b\n")
    (pkg / "sim" / "b.py").write_text("def f():\n    from . import a\n")
    (pkg / "sim" / "c.py").write_text("from xcfbench.cli.main import go\n")
    (pkg / "cli" / "main.py").write_text("from xcfbench.sim.c import x\ngo = 1\n")
    graph = import_graph(pkg)
    assert ["xcfbench.sim.a", "xcfbench.sim.b"] in cycles(graph)
    assert "xcfbench.sim.c -> xcfbench.cli.main" in upward_imports(graph)
    assert ["xcfbench.cli.main", "xcfbench.sim.c"] in cycles(graph)


def test_simulation_and_results_load_neither_click_nor_rich():
    code = (
        "import sys, xcfbench.sim.engine, xcfbench.sim.trace, xcfbench.sim.allocators, "
        "xcfbench.sim.frontends, xcfbench.sim.compressors, xcfbench.results.document, "
        "xcfbench.results.metrics, xcfbench.results.compare, xcfbench.results.sweep, "
        "xcfbench.results.published; "
        "bad = sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('click', 'rich', 'matplotlib', 'plotext')); "
        "print(','.join(bad))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == ""
