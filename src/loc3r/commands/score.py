"""``loc3r score``: official benchmark metrics on any model's prediction files.

Each benchmark folder with a ``score.py`` (``loc3r/benchmarks/<name>/score.py``, found by
:func:`loc3r.benchmarks.benchmark_modules`) adds its sub-commands here with ``register(benchmarks)``
(``loc3r score --help`` lists them). Each prints a table, or with ``--json`` one JSON object whose keys are the
printed metric names; exit code 2 with a message naming file / record / field on malformed input.

Missing predictions are scored as wrong and reported; predictions for unknown ids are reported and
ignored (``--strict`` turns them into an error). Each sub-command runs the metric of its benchmark's task
(:meth:`~loc3r.evaluate.task.Task.score_files`, the function ``loc3r eval`` scores with) and prints the task's metric
definition and title (:func:`loc3r.evaluate.report.run_score`).
"""

from __future__ import annotations

import argparse
import importlib


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``score`` and the sub-commands of every benchmark folder."""
    from loc3r.benchmarks import benchmark_modules

    parser = subparsers.add_parser(
        "score",
        help="score prediction files with the official benchmark metrics",
        description="Score any model's predictions with the official metrics of a benchmark (SQA3D, ScanQA, MSQA, "
        "Beacon3D, VSI-Bench, ViewSpatial-Bench, VSI-SUPER).",
    )
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for module_name in benchmark_modules("score"):
        importlib.import_module(module_name).register(benchmarks)
