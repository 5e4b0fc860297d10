"""The benchmarks, one folder each: ``loc3r/benchmarks/<name>/`` holds everything specific to one benchmark.

A folder holds (each file optional) its ``reader.py`` (data layer: loaders, ``Dataset``, builders exported as
``DATASET_KINDS``), ``prepare.py`` (its part of ``loc3r prepare``), ``metric.py`` (pure scoring functions),
``task.py`` (``TASKS``: its evaluation tasks), ``score.py`` (its ``loc3r score`` sub-commands) and
``lmms_eval.py`` with its YAML files (its lmms-eval tasks). A module's layer is given by its file name (role), not
by its folder: reader / prepare are data (10), metric / task evaluation (50), score / lmms_eval commands (70).

Nothing lists the benchmarks: each layer's registry asks :func:`benchmark_modules` for the role it needs
(:mod:`loc3r.data.registry` the readers, :mod:`loc3r.evaluate.tasks` the tasks, ``loc3r score`` the score entries,
:mod:`loc3r.data.prepare` the prepare steps, the lmms-eval plugin its hooks) and imports them. This module imports
nothing of them: discovery reads folder and file names on :data:`__path__` only, so a new benchmark is one new
folder (CONTRIBUTING.md, "Adding a benchmark").
"""

from __future__ import annotations

from pathlib import Path

#: the files a benchmark folder may hold, by role (module name)
ROLES = ("reader", "prepare", "metric", "task", "score", "lmms_eval")


def _folders() -> dict[str, Path]:
    """``{name: folder}`` of every benchmark package on :data:`__path__` (first one wins), sorted by name."""
    found: dict[str, Path] = {}
    for base in __path__:
        for folder in sorted(Path(base).iterdir()):
            if folder.is_dir() and folder.name.isidentifier() and (folder / "__init__.py").is_file():
                found.setdefault(folder.name, folder)
    return dict(sorted(found.items()))


def benchmark_names() -> list[str]:
    """The names of the benchmark folders, sorted."""
    return list(_folders())


def benchmark_modules(role: str) -> list[str]:
    """Dotted names ``loc3r.benchmarks.<name>.<role>`` of the benchmarks whose folder has ``<role>.py`` (sorted
    by benchmark name), without importing them."""
    if role not in ROLES:
        raise ValueError(f"unknown benchmark module role {role!r}; known: {ROLES}")
    return [f"{__name__}.{name}.{role}" for name, folder in _folders().items() if (folder / f"{role}.py").is_file()]
