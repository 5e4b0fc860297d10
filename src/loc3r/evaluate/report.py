"""Printing metric dicts: an aligned text table for people, one JSON object for machines.

Both views show the same flat dict produced by the scorers (the benchmark folders' ``metric.py``:
``score_sqa3d_localization``, ``score_sqa3d_qa``, ``score_scanqa``, ``score_vsibench``, ...), so every key printed in
the table is a key of the JSON object and vice versa. Floats are percentages unless the key says otherwise (``*_m``,
``*_deg``); the table rounds to 2 decimals, the JSON keeps full precision.

:func:`run_score` is what every ``loc3r score`` sub-command (a benchmark folder's ``score.py``) does with its task's
``score_files``: warn about missing / unknown ids on stderr, then print the table or the JSON object.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any


def format_value(value: Any) -> str:
    """Table text of one value: floats with 2 decimals, ``None`` as ``n/a``, lists comma-joined."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.2f}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def format_table(title: str, metrics: Mapping[str, Any], settings: Mapping[str, Any] | None = None) -> str:
    """Two-column table ``metric | value`` of every key of ``metrics``, under a title line.

    ``settings`` (e.g. the input files and options) are printed first so a result always carries how it
    was produced.
    """
    rows = [(str(k), format_value(v)) for k, v in metrics.items()]
    key_width = max([len("metric"), *(len(k) for k, _ in rows)])
    val_width = max([len("value"), *(len(v) for _, v in rows)])
    lines = [title]
    if settings:
        for key, value in settings.items():
            lines.append(f"  {key}: {format_value(value)}")
    rule = f"+-{'-' * key_width}-+-{'-' * val_width}-+"
    lines += [rule, f"| {'metric'.ljust(key_width)} | {'value'.ljust(val_width)} |", rule]
    for key, value in rows:
        # Numbers right-aligned, text left-aligned.
        cell = value.rjust(val_width) if _is_number(value) else value.ljust(val_width)
        lines.append(f"| {key.ljust(key_width)} | {cell} |")
    lines.append(rule)
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_json(metrics: Mapping[str, Any]) -> str:
    """One JSON object with the metric names as keys (NaN/inf become ``null``: strict JSON has neither)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        return value

    return json.dumps(clean(dict(metrics)), indent=2, allow_nan=False)


def _warnings(command: str, result: Mapping[str, Any], missing: str) -> list[str]:
    """The stderr lines of a score: missing / unknown ids, inconsistent situations, unjudged answers, no METEOR."""
    lines = []
    for kind, what in (("missing", missing), ("unknown", "predictions have ids not in the references (ignored)")):
        if result.get(kind):
            lines.append(f"{result[kind]} {what}, e.g. {result.get(f'{kind}_examples', [])}")
    if result.get("inconsistent_situations"):
        lines.append(f"{result['inconsistent_situations']} situations got different predictions for their questions "
                     "(the first question's prediction is scored)")  # fmt: skip
    if result.get("unjudged"):
        lines.append(f"{result['unjudged']} answers match no reference by rule and carry no judge score: scored 1 (the "
                     "official GPT-4o judge does not run here; the scores are a lower bound)")  # fmt: skip
    if result.get("meteor_unavailable"):
        lines.append(str(result["meteor_unavailable"]))
    return [f"loc3r score {command}: warning: {line}" for line in lines]


def run_score(
    args: Any,
    task_name: str,
    work: Callable[[Any], dict[str, Any]],
    settings: dict[str, Any],
    title: Callable[[str, Mapping[str, Any]], str] | None = None,
    missing: Callable[[Mapping[str, Any]], str] | None = None,
) -> int:
    """``loc3r score <args.benchmark>``: score with the task ``task_name`` (``work(task)``, its ``score_files``), warn
    on stderr, print its table (title: ``title(task.title, result)`` when given) or JSON. Bad files raise (the CLI
    reports them as ``loc3r score <benchmark>: error: ...``, exit code 2)."""
    from loc3r.evaluate.tasks import get_task

    command, task = args.benchmark, get_task(task_name)
    result = work(task)
    what = missing(result) if missing else "reference entries have no prediction (scored as wrong)"
    for line in _warnings(command, result, what):
        print(line, file=sys.stderr)
    if args.json:
        print(to_json(result))
    else:
        heading = title(task.title, result) if title else task.title
        print(format_table(heading, result, {**settings, "metric": task.metric}))
    return 0


def add_score_command(
    benchmarks: Any, command: str, task_name: str, help_text: str, files: dict[str, str], *, optional: tuple = (),
    strict: bool = True, meteor: bool = False, **defaults: Any,
) -> Any:  # fmt: skip
    """A ``loc3r score`` sub-command of the task ``task_name``: one ``--<name>`` option per entry of ``files``
    (``{name: help}``, ``predictions`` among them; required unless in ``optional``), ``--json``, ``--strict`` (for
    benchmarks whose references are a separate file) and ``--no-meteor`` when asked; :func:`run_files` runs it.
    ``defaults`` (``score_title``, ``score_missing``) go to :func:`run_score`. Returns the parser (for more options)."""
    parser = benchmarks.add_parser(command, help=help_text)
    for name, text in files.items():
        parser.add_argument(f"--{name}", required=name not in optional, help=text)
    if meteor:
        parser.add_argument("--no-meteor", action="store_true", help="skip METEOR (it starts a Java process)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    if strict:
        parser.add_argument("--strict", action="store_true", help="fail on predictions for ids not in the references")
    prog = f"loc3r score {command}"  # the CLI's error lines name the sub-command
    parser.set_defaults(func=run_files, prog=prog, score_task=task_name, score_files=tuple(files), **defaults)
    return parser


def run_files(args: Any) -> int:
    """The task's ``score_files(--predictions, <the other files>, strict / meteor / unit when the command has
    them)``, printed by :func:`run_score` with the files as settings."""
    settings = {name: getattr(args, name) for name in args.score_files}
    options = {k: getattr(args, k) for k in ("strict", "unit") if hasattr(args, k)}
    if hasattr(args, "no_meteor"):
        options["meteor"] = not args.no_meteor
    files = {k: v for k, v in settings.items() if k != "predictions"}
    return run_score(args, args.score_task, lambda task: task.score_files(args.predictions, **files, **options),
                     settings, getattr(args, "score_title", None), getattr(args, "score_missing", None))  # fmt: skip


def add_predictions_command(benchmarks: Any, command: str, task_name: str, help_text: str, what: str) -> None:
    """A ``loc3r score`` sub-command of a benchmark whose prediction file carries its references (VSI-Bench,
    ViewSpatial, VSI-SUPER): ``--predictions`` (``what``: the records) and ``--json``."""
    add_score_command(benchmarks, command, task_name, help_text, {"predictions": f"JSONL (or JSON list): {what}"},
                      strict=False)  # fmt: skip
