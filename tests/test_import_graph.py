"""The package's imports run one way (CONTRIBUTING.md "Layers"), with no cycle — also through string registries.

The layers, lowest first (a module may import its own layer or a lower one, never a higher one):

* 0 ``core`` (errors, io, config, geometry), the package ``__init__``;
* 10 ``data``, ``synthrooms``; 20 ``objectives``; 30 ``model``; 40 ``train``; 50 ``evaluate``; 60 ``apps``;
  70 ``commands``, ``integrations``; 80 ``cli``;
* inside ``loc3r.benchmarks`` a module's layer is its role, the file name: ``reader`` / ``prepare`` 10,
  ``metric`` / ``task`` 50, ``score`` / ``lmms_eval`` 70; the package and each folder's ``__init__`` 0 (the
  discovery of :func:`loc3r.benchmarks.benchmark_modules` imports nothing).

An *edge* ``A -> B`` is any way ``A`` can make ``B`` be imported:

* an ``import`` statement, anywhere in the file (a lazy import is still a dependency, and a lazy upward import is how
  a cycle hides) except under ``if TYPE_CHECKING:`` (annotations only, never imported);
* ``importlib.import_module(X)`` with ``X`` a constant, or an f-string: its fixed parts become a pattern and the edge
  goes to every existing module that matches (``f"loc3r.commands.{info.name}"`` is an edge to every command;
  ``{__name__}`` is the module's own name);
* a string constant that names a loc3r module, ``"loc3r.x.y"`` or ``"loc3r.x.y:function"`` (the registries
  ``TASK_MODULES``, ``BUILTIN_KINDS``); a logger name (``getLogger("loc3r.train")``) is not one;
* ``benchmark_modules("<role>")``: an edge to every ``loc3r.benchmarks.<name>.<role>`` module.

The static tests read the source with ``ast`` (no import of the package, the offending file and line are named);
:func:`test_runtime_imports_follow_the_layers` imports every module and exercises every registry in a subprocess,
records who imported whom, and checks the recorded graph the same way.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

SRC = REPO / "src"
PACKAGE = "loc3r"

#: First dotted component below ``loc3r`` -> layer rank (higher may import lower, never the reverse).
LAYERS: dict[str, int] = {
    "__init__": 0,
    "core": 0,  # foundations: errors, io, config, geometry
    "benchmarks": 0,  # the discovery package; its modules take the layer of their role (BENCHMARK_ROLES)
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

#: Role (file name) of a module in a benchmark folder -> its layer.
BENCHMARK_ROLES: dict[str, int] = {
    "reader": 10,
    "prepare": 10,
    "metric": 50,
    "task": 50,
    "score": 70,
    "lmms_eval": 70,
}

Edge = tuple[str, int]  # (imported module, line)


def _modules(src: Path = SRC, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``package`` under ``src`` (a package is its
    ``__init__``)."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
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


def _call_name(node: ast.Call) -> str:
    """``import_module`` for ``importlib.import_module(...)`` and ``import_module(...)``."""
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _pattern_targets(node: ast.JoinedStr, module: str, modules: dict[str, Path]) -> list[str]:
    """The modules an f-string may name: fixed parts literal, ``{__name__}`` the module itself, any other
    placeholder one dotted component."""
    pattern = ""
    for part in node.values:
        if isinstance(part, ast.Constant):
            pattern += re.escape(str(part.value))
        elif isinstance(part.value, ast.Name) and part.value.id == "__name__":
            pattern += re.escape(module)
        else:
            pattern += r"[A-Za-z0-9_]+"
    regex = re.compile(pattern)
    return sorted(m for m in modules if regex.fullmatch(m))


def _string_target(value: str, modules: dict[str, Path], package: str) -> str | None:
    """The module named by ``"loc3r.x.y"`` or ``"loc3r.x.y:attribute"``; None for any other string."""
    if not re.fullmatch(rf"{re.escape(package)}(\.\w+)*(:[\w.]+)?", value):
        return None
    name = value.split(":")[0]
    return name if name in modules else None


def _role_targets(role: str, modules: dict[str, Path], package: str) -> list[str]:
    """``benchmark_modules(role)``: every ``<package>.benchmarks.<name>.<role>`` module."""
    regex = re.compile(rf"{re.escape(package)}\.benchmarks\.\w+\.{re.escape(role)}")
    return sorted(m for m in modules if regex.fullmatch(m))


def _import_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".")
        base = base if is_package else base[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [f"{prefix}.{alias.name}" for alias in node.names] or [prefix]


def _type_checking_blocks(tree: ast.AST) -> list[list[ast.stmt]]:
    """The bodies of ``if TYPE_CHECKING:`` (for annotations only: never imported at runtime, so no edge)."""
    return [
        node.body
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        )
    ]


def _imports(module: str, path: Path, modules: dict[str, Path], package: str = PACKAGE) -> list[Edge]:
    """``(loc3r module, line)`` for every edge of ``path`` (see the module docstring), anywhere in the file."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[Edge] = []
    logger_args: set[int] = set()
    typing_only = {id(n) for block in _type_checking_blocks(tree) for stmt in block for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in _import_names(node, module, path.name == "__init__.py"):
                if name == package or name.startswith(package + "."):
                    target = _resolve(name, modules)
                    targets += [target] if target else []
        elif isinstance(node, ast.Call) and node.args:
            arg, called = node.args[0], _call_name(node)
            if called == "getLogger":
                logger_args.add(id(arg))
            elif called == "import_module" and isinstance(arg, ast.JoinedStr):
                targets = _pattern_targets(arg, module, modules)
            elif called == "benchmark_modules" and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                targets = _role_targets(arg.value, modules, package)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in logger_args:
            target = _string_target(node.value, modules, package)
            targets = [target] if target else []
        found += [(t, node.lineno) for t in targets if t != module]
    return found


#: ``loc3r.benchmarks.<name>.<role>``: the layer of a benchmark module is given by its role (file name), not its folder
BENCHMARK_ROLES: dict[str, int] = {"reader": 10, "prepare": 10, "metric": 50, "task": 50, "score": 70, "lmms_eval": 70}


def _layer(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    assert key in LAYERS, f"module {module} is in no layer: add {key!r} to LAYERS (and to CONTRIBUTING.md)"
    if key == "benchmarks" and len(parts) > 3:
        role = parts[-1]
        assert len(parts) == 4 and role in BENCHMARK_ROLES, (
            f"module {module}: a benchmark folder holds only the roles {sorted(BENCHMARK_ROLES)} (one file each)"
        )
        return BENCHMARK_ROLES[role]
    return LAYERS[key]


def _graph(src: Path = SRC, package: str = PACKAGE) -> tuple[dict[str, Path], dict[str, list[Edge]]]:
    modules = _modules(src, package)
    return modules, {m: _imports(m, p, modules, package) for m, p in modules.items()}


def _cycles(graph: dict[str, list[Edge]]) -> list[list[str]]:
    """Tarjan's strongly connected components; every component of more than one module is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph.get(v, ()):
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
    return cycles


def _upward(graph: dict[str, list[Edge]], where: dict[str, Path] | None = None) -> list[str]:
    def place(m: str, line: int) -> str:
        return f"{where[m].relative_to(SRC.parent)}:{line}: " if where and m in where else ""

    return [
        f"{place(m, line)}{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
        for m, edges in sorted(graph.items())
        for t, line in edges
        if _layer(t) > _layer(m)
    ]


def test_every_module_has_a_layer() -> None:
    modules, _ = _graph()
    assert len(modules) > 30  # the walk found the package
    for module in modules:
        _layer(module)


def test_no_upward_import() -> None:
    modules, graph = _graph()
    bad = _upward(graph, modules)
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycle() -> None:
    _, graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_walk_sees_lazy_upward_imports(tmp_path: Path) -> None:
    """The checker itself: an import inside a function counts, and relative imports resolve."""
    modules = {"loc3r.data.x": tmp_path / "x.py", "loc3r.evaluate.tasks": tmp_path / "t.py", "loc3r.data": tmp_path}
    src = tmp_path / "x.py"
    src.write_text("def f():\n    import loc3r.evaluate.tasks\n\nfrom . import x\n")
    edges = _imports("loc3r.data.x", src, modules)
    assert ("loc3r.evaluate.tasks", 2) in edges
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import loc3r.evaluate.tasks\n")
    assert _imports("loc3r.data.x", src, modules) == []  # annotations only: no edge
    assert _layer("loc3r.evaluate.tasks") > _layer("loc3r.data.x")


def test_the_walk_follows_the_real_registries() -> None:
    """The string registries of today's tree are edges: the CLI's commands, the backbones, the dataset kinds
    (``"module:function"``) and the benchmark tasks (``TASK_MODULES``)."""
    modules, graph = _graph()
    targets = {m: {t for t, _ in edges} for m, edges in graph.items()}
    commands = {m for m in modules if m.startswith("loc3r.commands.")}
    assert len(commands) > 5 and commands <= targets["loc3r.cli"]
    backbones = {m for m in modules if m.startswith("loc3r.model.backbones.")}
    assert len(backbones) > 3 and backbones <= targets["loc3r.model.backbones"]
    # dataset kinds and tasks: a table of names today, the benchmark folders' roles once they exist
    readers = {m for m in modules if re.fullmatch(r"loc3r\.benchmarks\.\w+\.reader", m)}
    if readers:
        assert readers <= targets["loc3r.data.registry"]
    else:
        assert {"loc3r.data.builders", "loc3r.data.text_localization"} <= targets["loc3r.data.registry"]
    task_roles = {m for m in modules if re.fullmatch(r"loc3r\.benchmarks\.\w+\.task", m)}
    if task_roles:
        assert [m for m, edges in targets.items() if task_roles <= edges], "no module discovers the benchmark tasks"
    else:
        assert "loc3r.evaluate.tasks.sqa3d" in targets["loc3r.evaluate.tasks"]
    # a logger named like a package is no edge
    assert "loc3r.train" not in targets["loc3r.train.recipe"]


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_walk_finds_a_registry_cycle(tmp_path: Path) -> None:
    """The cycle the string registries once hid (``evaluate.tasks`` -> ``tasks.sqa3d`` (a ``TASK_MODULES`` name)
    -> ``benchmark_config`` -> ``evaluate.tasks``), in a tiny package of the same shape: found, and not without
    the registry strings."""
    _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/evaluate/__init__.py": "",
            "pkg/evaluate/tasks/__init__.py": (
                "import importlib\nTASK_MODULES = {'sqa3d': 'pkg.evaluate.tasks.sqa3d'}\n"
                "def get(name):\n    return importlib.import_module(TASK_MODULES[name])\n"
            ),
            "pkg/evaluate/tasks/sqa3d.py": "def f():\n    from pkg.evaluate import benchmark_config\n",
            "pkg/evaluate/benchmark_config.py": "from pkg.evaluate.tasks import TASK_MODULES\n",
        },
    )
    _, graph = _graph(tmp_path, "pkg")
    assert _cycles(graph) == [
        ["pkg.evaluate.benchmark_config", "pkg.evaluate.tasks", "pkg.evaluate.tasks.sqa3d"],
    ]
    (tmp_path / "pkg/evaluate/tasks/__init__.py").write_text("TASK_NAMES = ('sqa3d',)\n")
    assert _cycles(_graph(tmp_path, "pkg")[1]) == []


def test_the_walk_expands_patterns_and_benchmark_roles(tmp_path: Path) -> None:
    """``import_module(f"pkg.commands.{name}")`` and ``import_module(f"{__name__}.{name}")`` reach every match,
    ``benchmark_modules("task")`` every benchmark's task; an upward role import is reported."""
    _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/cli.py": "import importlib\nfor n in ('a',):\n    importlib.import_module(f'pkg.commands.{n}')\n",
            "pkg/commands/__init__.py": "",
            "pkg/commands/a.py": "",
            "pkg/commands/b.py": "",
            "pkg/model/backbones/__init__.py": (
                "from importlib import import_module\nimport_module(f'{__name__}.{x}')\n"
            ),
            "pkg/model/backbones/qwen.py": "",
            "pkg/benchmarks/__init__.py": "def benchmark_modules(role): ...\n",
            "pkg/benchmarks/one/__init__.py": '"""One."""\n',
            "pkg/benchmarks/one/task.py": "from pkg.benchmarks.one import score\n",
            "pkg/benchmarks/one/score.py": "",
            "pkg/benchmarks/two/__init__.py": "",
            "pkg/benchmarks/two/task.py": "",
            "pkg/evaluate/__init__.py": "from pkg.benchmarks import benchmark_modules\nbenchmark_modules('task')\n",
        },
    )
    modules, graph = _graph(tmp_path, "pkg")
    targets = {m: {t for t, _ in edges} for m, edges in graph.items()}
    assert targets["pkg.cli"] == {"pkg.commands.a", "pkg.commands.b"}
    assert targets["pkg.model.backbones"] == {"pkg.model.backbones.qwen"}
    assert targets["pkg.evaluate"] == {"pkg.benchmarks", "pkg.benchmarks.one.task", "pkg.benchmarks.two.task"}
    assert _upward({"pkg.benchmarks.one.task": graph["pkg.benchmarks.one.task"]}) == [
        "pkg.benchmarks.one.task (layer 50) imports pkg.benchmarks.one.score (layer 70)"
    ]
    assert _layer("pkg.benchmarks.one") == 0 and _layer("pkg.benchmarks") == 0
    with pytest.raises(AssertionError, match="only the roles"):
        _layer("pkg.benchmarks.one.helpers")


#: Run in a fresh interpreter: records every (importing loc3r module, imported loc3r module), imports every module
#: and exercises the registries, prints the edges as JSON.
_RECORDER = r"""
import builtins, importlib, json, sys

PACKAGE = "loc3r"
edges = set()


def _importer():
    # the first frame outside importlib and this script
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if frame.f_code.co_filename != "<string>" and not name.startswith("importlib"):
            return name if name == PACKAGE or name.startswith(PACKAGE + ".") else None
        frame = frame.f_back
    return None


def _record(target):
    if target == PACKAGE or target.startswith(PACKAGE + "."):
        source = _importer()
        if source and source != target:
            edges.add((source, target))


class _RecFinder:
    def find_spec(self, name, path=None, target=None):
        _record(name)
        return None


_import = builtins.__import__


def _rec_import(name, globals=None, locals=None, fromlist=(), level=0):
    module = _import(name, globals, locals, fromlist, level)
    full = importlib.util.resolve_name("." * level + name, (globals or {}).get("__package__")) if level else name
    _record(full)
    for item in fromlist or ():
        if f"{full}.{item}" in sys.modules:
            _record(f"{full}.{item}")
    return module


_import_module = importlib.import_module


def _rec_import_module(name, package=None):
    module = _import_module(name, package)
    _record(module.__name__)
    return module


import importlib.util
sys.meta_path.insert(0, _RecFinder())
builtins.__import__ = _rec_import
importlib.import_module = _rec_import_module

import pkgutil
import loc3r

skipped = {}
for info in pkgutil.walk_packages(loc3r.__path__, "loc3r."):
    try:
        importlib.import_module(info.name)
    except ImportError as error:  # an optional dependency (lmms-eval) that is not installed
        skipped[info.name] = str(error)

# the registries
from loc3r.cli import build_parser
build_parser()
from loc3r.model.backbones import available_backbones
available_backbones()
from loc3r.data.registry import available_kinds, get_builder
for kind in available_kinds():
    get_builder(kind)
import loc3r.evaluate.tasks as tasks
names = tasks.task_names() if hasattr(tasks, "task_names") else tasks.TASK_NAMES
for name in names:
    tasks.get_task(name)
try:
    from loc3r.benchmarks import benchmark_modules
except ImportError:
    benchmark_modules = None
if benchmark_modules is not None:
    for role in ("reader", "prepare", "metric", "task", "score", "lmms_eval"):
        for name in benchmark_modules(role):
            importlib.import_module(name)
print(json.dumps({"edges": sorted(edges), "skipped": skipped}))
"""


def test_runtime_imports_follow_the_layers() -> None:
    """Every module imported and every registry exercised (commands, backbones, dataset kinds, tasks, benchmark
    roles) in a fresh interpreter: the imports that really happen go only downward and make no cycle."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", _RECORDER], capture_output=True, text=True, env=env, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    graph: dict[str, list[Edge]] = {}
    for source, target in result["edges"]:
        graph.setdefault(source, []).append((target, 0))
    assert len(graph) > 30, "the recorder saw almost no imports"
    targets = {t for edges in graph.values() for t, _ in edges}
    assert {m for m in _modules() if m.startswith("loc3r.commands.")} <= targets | set(result["skipped"])
    bad = _upward(graph)
    assert not bad, "upward imports at runtime:\n" + "\n".join(bad)
    cycles = _cycles(graph)
    assert not cycles, "import cycles at runtime:\n" + "\n".join(" <-> ".join(c) for c in cycles)
