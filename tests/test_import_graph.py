"""The package's imports run one way (CONTRIBUTING.md "Layers"), with no cycle.

The layers, lowest first: the base modules (io, config_base), geometry / losses, data, model, train, evaluate,
infer / demo / viz, commands / integrations, cli. A module may import its own layer or a lower one, never a higher
one; and the module-level import graph (every ``import``, also the ones inside functions: a lazy import is still a
dependency, and a lazy upward import is how a cycle hides) has no cycle. Read from the source with ``ast``, so
the test needs no import of the package and names the offending file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

SRC = REPO / "src"
PACKAGE = "loc3r"

#: First dotted component below ``loc3r`` -> layer rank (higher may import lower, never the reverse).
LAYERS: dict[str, int] = {
    "__init__": 0,
    "core": 0,  # foundations: errors, io, config, geometry
    "data": 10,
    "synthrooms": 10,  # the world generator, beside the data it writes for
    "objectives": 20,
    "model": 30,
    "train": 40,
    "evaluate": 50,
    "apps": 60,  # demo, infer, stream, stream_eval, web, viz, pretrained_base
    "commands": 70,
    "integrations": 70,  # lmms-eval plugin: imports apps / evaluate, nothing imports it
    "cli": 80,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (a module or ``module.attribute``) starts with."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in modules:
            return candidate
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """``(imported loc3r module, line)`` for every import statement of ``path`` (anywhere in the file)."""
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{alias.name}" for alias in node.names] or [prefix]
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _resolve(name, modules)
                if target is not None and target != module:
                    found.append((target, node.lineno))
    return found


#: ``loc3r.benchmarks.<name>.<role>``: the layer of a benchmark module is given by its role (file name), not its folder
BENCHMARK_ROLES: dict[str, int] = {"reader": 10, "prepare": 10, "metric": 50, "task": 50, "score": 70, "lmms_eval": 70}


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[1:2] == ["benchmarks"]:  # the package and its folders' __init__ (docstrings only): 0
        return BENCHMARK_ROLES[parts[3]] if len(parts) > 3 else 0
    key = parts[1] if len(parts) > 1 else "__init__"
    assert key in LAYERS, f"module {module} is in no layer: add {key!r} to LAYERS (and to CONTRIBUTING.md)"
    return LAYERS[key]


def _graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    modules = _modules()
    return modules, {m: _imports(m, p, modules) for m, p in modules.items()}


def test_every_module_has_a_layer() -> None:
    modules, _ = _graph()
    assert len(modules) > 30  # the walk found the package
    for module in modules:
        _layer(module)


def test_no_upward_import() -> None:
    modules, graph = _graph()
    bad = [
        f"{modules[m].relative_to(SRC.parent)}:{line}: {m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
        for m, edges in graph.items()
        for t, line in edges
        if _layer(t) > _layer(m)
    ]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycle() -> None:
    modules, graph = _graph()
    # Tarjan's strongly connected components; any component with more than one module is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph[v]:
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
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_walk_sees_lazy_upward_imports(tmp_path: Path) -> None:
    """The checker itself: an import inside a function counts, and relative imports resolve."""
    modules = {"loc3r.data.x": tmp_path / "x.py", "loc3r.evaluate.tasks": tmp_path / "t.py", "loc3r.data": tmp_path}
    src = tmp_path / "x.py"
    src.write_text("def f():\n    import loc3r.evaluate.tasks\n\nfrom . import x\n")
    edges = _imports("loc3r.data.x", src, modules)
    assert ("loc3r.evaluate.tasks", 2) in edges
    assert _layer("loc3r.evaluate.tasks") > _layer("loc3r.data.x")
