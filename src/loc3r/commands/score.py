"""``loc3r score``: official benchmark metrics on any model's prediction files.

Sub-commands (each prints a table, or with ``--json`` one JSON object whose keys are the printed metric
names; exit code 2 with a message naming file / record / field on malformed input):

* ``loc3r score sqa3d-loc --annotations A.json --predictions P.json [--questions Q.json] [--unit question]`` —
  Acc@0.5m/1.0m/15°/30° per situation (the paper's unit; ``--unit question`` scores every question entry).
* ``loc3r score sqa3d-qa --annotations A.json --predictions P.json [--questions Q.json]`` — EM@1, EM-R,
  per question type.
* ``loc3r score scanqa --references R.json --predictions P.json`` — EM@1, BLEU-1..4, METEOR, ROUGE-L, CIDEr.
* ``loc3r score msqa --references MSQA_scannet_test_v1.json --predictions P.json`` — EM@1 / EM-R (+ per MSQA type),
  BLEU-1..4, METEOR, ROUGE-L, CIDEr (the ScanQA protocol; the paper's GPT-judged score is not computed).
* ``loc3r score vsibench --predictions P.jsonl`` — the 8 VSI-Bench tasks and ``overall``.
* ``loc3r score beacon3d --metadata metadata_scannet_qa.json --predictions P.json`` — Beacon3D QA per knowledge
  type, overall (case) and overall (object).
* ``loc3r score vsibench-debiased --predictions P.jsonl`` — VSI-Bench's metric on VSI-Bench-debiased records.
* ``loc3r score viewspatial --predictions P.jsonl`` — ViewSpatial-Bench accuracy, overall and per question type.
* ``loc3r score vsisuper-recall|vsisuper-count|vsisuper-count-streaming --predictions P.jsonl`` — VSI-SUPER: VSR
  accuracy, VSC MRA, VSC streaming MRA (per duration).

Missing predictions are scored as wrong and reported; predictions for unknown ids are reported and
ignored (``--strict`` turns them into an error). Each sub-command runs the metric of its benchmark's task
(:mod:`loc3r.evaluate.tasks`: :meth:`~loc3r.evaluate.tasks.base.Task.score_files`, the function ``loc3r eval``
scores with) and prints the task's metric definition and title; the metric functions are in
:mod:`loc3r.evaluate.localization`, :mod:`loc3r.evaluate.qa`, :mod:`loc3r.evaluate.vsibench` and
:mod:`loc3r.evaluate.beacon3d`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def _task(command: str) -> Any:
    """The task whose metric ``loc3r score COMMAND`` runs (each task names its sub-command: ``score_command``)."""
    from loc3r.evaluate.tasks import TASK_NAMES, get_task

    for name in TASK_NAMES:
        task = get_task(name)
        if task.score_command == command:
            return task
    raise LookupError(f"no task scores with 'loc3r score {command}'")  # a bug: every sub-command has its task


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``score`` and its four benchmark sub-commands."""
    parser = subparsers.add_parser(
        "score",
        help="score prediction files with the official benchmark metrics",
        description="Score any model's predictions with the official metrics of SQA3D, ScanQA and VSI-Bench.",
    )
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)

    loc = benchmarks.add_parser("sqa3d-loc", help="SQA3D situation localization (Acc@0.5m/1.0m/15deg/30deg)")
    loc.add_argument("--annotations", required=True, help="official SQA3D annotations JSON ({'annotations': [...]})")
    loc.add_argument(
        "--predictions",
        required=True,
        help="JSON list (or JSONL) of {question_id, position{x,y,z}, rotation{_x,_y,_z,_w}} "
        "or {question_id, candidates: [<=3 {position, rotation}]}",
    )
    loc.add_argument(
        "--questions",
        help="official SQA3D questions JSON: situations are then (scene, situation text); without it, (scene, pose)",
    )
    loc.add_argument(
        "--unit",
        choices=("situation", "question"),
        default="situation",
        help="count each situation once (default, the paper's 719-situation test set) or every question entry",
    )
    _common(loc)
    loc.set_defaults(func=_run_sqa3d_loc)

    qa = benchmarks.add_parser("sqa3d-qa", help="SQA3D question answering (EM@1, EM-R, per question type)")
    qa.add_argument("--annotations", required=True, help="official SQA3D annotations JSON")
    qa.add_argument("--predictions", required=True, help="JSON list or JSONL of {question_id, answer}")
    qa.add_argument("--questions", help="official SQA3D questions JSON (question text -> per-type breakdown)")
    _common(qa)
    qa.set_defaults(func=_run_sqa3d_qa)

    scanqa = benchmarks.add_parser("scanqa", help="ScanQA (EM@1, BLEU-1..4, METEOR, ROUGE-L, CIDEr)")
    scanqa.add_argument("--references", required=True, help="ScanQA file with answers (e.g. ScanQA_v1.0_val.json)")
    scanqa.add_argument(
        "--predictions",
        required=True,
        help="JSON list or JSONL of {question_id, answer} (answer may be a list of candidates, or answer_top10)",
    )
    scanqa.add_argument("--no-meteor", action="store_true", help="skip METEOR (it starts a Java process)")
    _common(scanqa)
    scanqa.set_defaults(func=_run_scanqa)

    msqa = benchmarks.add_parser("msqa", help="MSQA (EM@1, EM-R per type, BLEU-1..4, METEOR, ROUGE-L, CIDEr)")
    msqa.add_argument("--references", required=True,
                      help="the released MSQA file (MSQA_scannet_test_v1.json) or the msqa_references.json of loc3r "
                      "eval")  # fmt: skip
    msqa.add_argument("--predictions", required=True, help="JSON list or JSONL of {question_id, answer}")
    msqa.add_argument("--no-meteor", action="store_true", help="skip METEOR (it starts a Java process)")
    _common(msqa)
    msqa.set_defaults(func=_run_msqa)

    vsi = benchmarks.add_parser("vsibench", help="VSI-Bench (MC accuracy, MRA, 8 tasks and overall)")
    vsi.add_argument(
        "--predictions", required=True, help="JSONL (or JSON list): VSI-Bench records each with 'prediction'"
    )
    vsi.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    vsi.set_defaults(func=_run_vsibench)

    for command, help_text, what in (
        ("vsibench-debiased", "VSI-Bench-debiased (VSI-Bench's metric on the debiased records)",
         "VSI-Bench records each with 'prediction'"),
        ("viewspatial", "ViewSpatial-Bench (last-line option letter; overall and per question type)",
         "ViewSpatial-Bench records {question_type, answer, ...} each with 'prediction'"),
        ("vsisuper-recall", "VSI-SUPER Recall (VSR accuracy per duration)",
         "VSI-SUPER-Recall records {answer, type, ...} each with 'prediction'"),
        ("vsisuper-count", "VSI-SUPER Count (VSC MRA per duration)",
         "VSI-SUPER-Count records {answer, split, ...} each with 'prediction'"),
        ("vsisuper-count-streaming", "VSI-SUPER Count streaming (MRA per query time)",
         "VSI-SUPER-Count streaming records {answers, query_times, split, ...} each with 'prediction': a list "
         "(or JSON text of a list) of counts, one per query time"),
    ):  # fmt: skip
        extra = benchmarks.add_parser(command, help=help_text)
        extra.add_argument("--predictions", required=True, help=f"JSONL (or JSON list): {what}")
        extra.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
        extra.set_defaults(func=_run_predictions_only, score_name=command)

    beacon = benchmarks.add_parser("beacon3d", help="Beacon3D QA (per type, overall case / object)")
    beacon.add_argument("--metadata", required=True, help="Beacon3D metadata_<domain>_qa.json")
    beacon.add_argument(
        "--predictions",
        required=True,
        help="JSON list or JSONL of {question_id (ScanQA-format id), answer[, score: judge score 1..5]}",
    )
    _common(beacon)
    beacon.set_defaults(func=_run_beacon3d)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--strict", action="store_true", help="fail on predictions for ids not in the references")


def _run_sqa3d_loc(args: argparse.Namespace) -> int:
    return _execute(
        args,
        "sqa3d-loc",
        lambda task: task.score_files(
            args.predictions, annotations=args.annotations, questions=args.questions, unit=args.unit, strict=args.strict
        ),
        {"annotations": args.annotations, "predictions": args.predictions, "questions": args.questions},
    )


def _run_sqa3d_qa(args: argparse.Namespace) -> int:
    return _execute(
        args,
        "sqa3d-qa",
        lambda task: task.score_files(
            args.predictions, annotations=args.annotations, questions=args.questions, strict=args.strict
        ),
        {"annotations": args.annotations, "predictions": args.predictions, "questions": args.questions},
    )


def _run_scanqa(args: argparse.Namespace) -> int:
    return _execute(
        args,
        "scanqa",
        lambda task: task.score_files(
            args.predictions, references=args.references, strict=args.strict, meteor=not args.no_meteor
        ),
        {"references": args.references, "predictions": args.predictions},
    )


def _run_msqa(args: argparse.Namespace) -> int:
    return _execute(
        args,
        "msqa",
        lambda task: task.score_files(
            args.predictions, references=args.references, strict=args.strict, meteor=not args.no_meteor
        ),
        {"references": args.references, "predictions": args.predictions},
    )


def _run_vsibench(args: argparse.Namespace) -> int:
    return _execute(
        args, "vsibench", lambda task: task.score_files(args.predictions), {"predictions": args.predictions}
    )


def _run_predictions_only(args: argparse.Namespace) -> int:
    """A benchmark whose prediction file carries its references (VSI-Bench-debiased, ViewSpatial, VSI-SUPER)."""
    return _execute(
        args, args.score_name, lambda task: task.score_files(args.predictions), {"predictions": args.predictions}
    )


def _run_beacon3d(args: argparse.Namespace) -> int:
    return _execute(
        args,
        "beacon3d",
        lambda task: task.score_files(args.predictions, metadata=args.metadata, strict=args.strict),
        {"metadata": args.metadata, "predictions": args.predictions},
    )


def _execute(
    args: argparse.Namespace,
    name: str,
    work: Callable[[Any], dict[str, Any]],
    settings: dict[str, Any],
) -> int:
    """Score with the task of sub-command ``name`` (``work(task)``), then warn and print its table or JSON."""
    from loc3r.data.schema import SampleError
    from loc3r.evaluate.report import format_table, to_json

    task = _task(name)
    title = task.title
    try:
        result = work(task)
    except SampleError as err:
        print(f"loc3r score {name}: error: {err}", file=sys.stderr)
        return 2
    if name == "sqa3d-loc":
        unit, n, n_q = result["unit"], result["n"], result["n_questions"]
        title = f"{title} (unit: {unit}, n = {n} {unit}s of {n_q} questions)"
    for kind, what in (
        ("missing", "reference entries have no prediction (scored as wrong)"),
        ("unknown", "predictions have ids not in the references (ignored)"),
    ):
        if result.get(kind):
            examples = result.get(f"{kind}_examples", [])
            if name == "sqa3d-loc" and kind == "missing":
                what = f"{result['unit']}s have no prediction (scored as wrong)"
            print(f"loc3r score {name}: warning: {result[kind]} {what}, e.g. {examples}", file=sys.stderr)
    if result.get("inconsistent_situations"):
        print(
            f"loc3r score {name}: warning: {result['inconsistent_situations']} situations got different predictions "
            "for their questions (the first question's prediction is scored)",
            file=sys.stderr,
        )
    if result.get("unjudged"):
        print(
            f"loc3r score {name}: warning: {result['unjudged']} answers match no reference by rule and carry no judge "
            "score: scored 1 (the official GPT-4o judge does not run here; the scores are a lower bound)",
            file=sys.stderr,
        )
    if result.get("meteor_unavailable"):
        print(f"loc3r score {name}: warning: {result['meteor_unavailable']}", file=sys.stderr)
    if args.json:
        print(to_json(result))
    else:
        settings = {**settings, "metric": task.metric}
        print(format_table(title, result, settings))
    return 0
