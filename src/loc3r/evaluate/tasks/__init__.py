"""Evaluation tasks in the style of lmms-eval: per benchmark, a pinned prompt, a prediction record and a scorer.

Every task is a :class:`~loc3r.evaluate.tasks.base.Task` in one module here; :data:`TASK_MODULES` is THE list of
task names (the ``benchmark:`` key of an evaluation config, checked against it; ``loc3r score`` finds its
metrics through it) and :func:`get_task` returns a task by name (lazy import: the tasks import the heavy
loaders). One runner evaluates all of them (:func:`loc3r.evaluate.runner.evaluate`, ``loc3r eval --config``).

Each task states the exact prompt template, frame count and sampling; they are printed next to every result
(peer projects' numbers moved by several CIDEr points with one prompt suffix, so the prompt is part of the result).

Real benchmarks (``configs/paper/eval/<benchmark>.yaml``; prompt = question + the config's pinned suffix;
prediction file = the ``loc3r score`` input of the benchmark; score = the existing metric function):

* :mod:`loc3r.evaluate.tasks.sqa3d` — ``sqa3d`` (situated QA, EM@1 / EM-R per question type) and
  ``sqa3d_localization`` (``<Pos>``/``<Ori>`` heads mapped back to SQA3D's frame, Acc@0.5m/1.0m/15°/30°);
* :mod:`loc3r.evaluate.tasks.scanqa` — ``scanqa`` (EM@1, BLEU-1..4, METEOR, ROUGE-L, CIDEr);
* :mod:`loc3r.evaluate.tasks.vsibench` — ``vsibench`` (options one per line, multiple-choice vs numerical
  suffix by question type; MC accuracy, MRA, 8 tasks + overall);
* :mod:`loc3r.evaluate.tasks.msqa` — ``msqa`` (situated open answers; EM@1 / EM-R per type and the caption
  metrics — the paper's GPT-judged score is not computed);
* :mod:`loc3r.evaluate.tasks.beacon3d` — ``beacon3d`` (per knowledge type, overall case / object);
* :mod:`loc3r.evaluate.tasks.vsibench_debiased` — ``vsibench_debiased`` (VSI-Bench's prompt and metric on the
  debiased records);
* :mod:`loc3r.evaluate.tasks.viewspatial` — ``viewspatial`` (perspective taking; last-line option letter, micro
  accuracy + per question type);
* :mod:`loc3r.evaluate.tasks.vsisuper` — ``vsisuper_recall`` (VSR accuracy), ``vsisuper_count`` (VSC MRA) and
  ``vsisuper_count_streaming`` (VSC streamed through ``loc3r stream``'s session, :mod:`loc3r.apps.stream_eval`).

SynthRooms (``configs/synth/eval/<split>.yaml``, the tasks of ``loc3r demo``), :mod:`loc3r.evaluate.tasks.synth`:
``synth_localization`` (heads or text coordinates), ``synth_qa`` (EM@1), ``synth_vsi`` (VSI-Bench score), and
the group ``synthrooms`` that runs the three on one split and scores them per split.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["TASK_MODULES", "TASK_NAMES", "get_task"]

#: task name -> module holding it (in that module's ``TASKS``). The one list of benchmark names.
TASK_MODULES: dict[str, str] = {
    "sqa3d": "loc3r.evaluate.tasks.sqa3d",
    "sqa3d_localization": "loc3r.evaluate.tasks.sqa3d",
    "scanqa": "loc3r.evaluate.tasks.scanqa",
    "vsibench": "loc3r.evaluate.tasks.vsibench",
    "vsibench_debiased": "loc3r.evaluate.tasks.vsibench_debiased",
    "viewspatial": "loc3r.evaluate.tasks.viewspatial",
    "vsisuper_recall": "loc3r.evaluate.tasks.vsisuper",
    "vsisuper_count": "loc3r.evaluate.tasks.vsisuper",
    "vsisuper_count_streaming": "loc3r.evaluate.tasks.vsisuper",
    "msqa": "loc3r.evaluate.tasks.msqa",
    "beacon3d": "loc3r.evaluate.tasks.beacon3d",
    "synthrooms": "loc3r.evaluate.tasks.synth",
    "synth_localization": "loc3r.evaluate.tasks.synth",
    "synth_qa": "loc3r.evaluate.tasks.synth",
    "synth_vsi": "loc3r.evaluate.tasks.synth",
}

TASK_NAMES: tuple[str, ...] = tuple(TASK_MODULES)


def get_task(name: str, source: str = "config") -> Any:
    """A fresh :class:`~loc3r.evaluate.tasks.base.Task` of a registered name; an unknown name is a
    :class:`~loc3r.core.errors.ConfigError` naming ``source`` and the known names."""
    from loc3r.core.config import ConfigError

    module_name = TASK_MODULES.get(name)
    if module_name is None:
        raise ConfigError(f"{source}: unknown benchmark {name!r} (key 'benchmark'); known: {sorted(TASK_MODULES)}")
    return importlib.import_module(module_name).TASKS[name]()
