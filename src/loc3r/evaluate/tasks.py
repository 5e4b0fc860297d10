"""The task registry: every evaluation task of every benchmark folder, by name (``benchmark:`` of an evaluation
config, ``loc3r eval``, ``loc3r score``, the lmms-eval plugin).

There is no list of benchmarks here: each folder ``loc3r/benchmarks/<name>/`` with a ``task.py`` exports
``TASKS: dict[str, type[Task]]`` (a subclass of :class:`~loc3r.evaluate.task.Task`, lmms-eval style: how to build
the samples, prompt them, record a prediction and score the records), and :func:`task_classes` imports those
modules (found by :func:`loc3r.benchmarks.benchmark_modules`) on first use. One runner evaluates all of them
(:func:`loc3r.evaluate.runner.evaluate`, ``loc3r eval --config``).

Each task states the exact prompt template, frame count and sampling; they are printed next to every result
(peer projects' numbers moved by several CIDEr points with one prompt suffix, so the prompt is part of the result).
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

from loc3r.core.config import (
    ConfigError,
    apply_overrides,
    locate_config,
    read_yaml_mapping,
    resolve_input_paths,
    validate_config,
)
from loc3r.evaluate.benchmark_config import EvalConfig


@cache
def task_classes() -> dict[str, type]:
    """``{task name: Task subclass}`` of every benchmark folder's ``task.py`` (imported now, once)."""
    from loc3r.benchmarks import benchmark_modules

    found: dict[str, type] = {}
    for module_name in benchmark_modules("task"):
        for name, cls in importlib.import_module(module_name).TASKS.items():
            if name in found:  # two folders claim one name: a packaging bug, not a user error
                raise RuntimeError(f"task {name!r} of {module_name} is also defined by {found[name].__module__}")
            found[name] = cls
    return found


def task_names() -> list[str]:
    """Every registered task name (sorted)."""
    return sorted(task_classes())


def get_task(name: str, source: str = "config") -> Any:
    """A fresh :class:`~loc3r.evaluate.task.Task` of a registered name; an unknown name is a
    :class:`~loc3r.core.errors.ConfigError` naming ``source`` and the known names."""
    cls = task_classes().get(name)
    if cls is None:
        raise ConfigError(f"{source}: unknown benchmark {name!r} (key 'benchmark'); known: {task_names()}")
    return cls()


def load_eval_config(path: str | Path, overrides: list[str] | None = None) -> EvalConfig:
    """Read and validate an evaluation YAML (unknown keys -> :class:`ConfigError` naming key and file; a
    ``benchmark`` no task folder defines -> the same, with the known names); ``overrides`` are ``--set key.path=value``
    items applied before validation (same errors as the file)."""
    path = locate_config(path)
    raw = read_yaml_mapping(path, "evaluation config")
    if overrides:
        raw = apply_overrides(raw, overrides, source=f"{path} (--set)")
    raw = resolve_input_paths(raw, path)  # shipped relative inputs work from any directory (see core.config)
    config = validate_config(
        EvalConfig, raw, str(path), what="evaluation config", schema="evaluation", top="an evaluation config"
    )
    get_task(config.benchmark, str(path))  # an unknown name: ConfigError naming the file, the key and the known names
    return config
