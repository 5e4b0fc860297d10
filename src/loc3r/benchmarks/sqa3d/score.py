"""``loc3r score sqa3d-loc`` (Acc@0.5m/1.0m/15°/30° per situation; ``--unit question`` scores every question entry)
and ``loc3r score sqa3d-qa`` (EM@1, EM-R, per question type) on any model's prediction files."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any


def register(benchmarks: argparse._SubParsersAction) -> None:
    """Add the two SQA3D sub-commands of ``loc3r score``."""
    from loc3r.evaluate.report import add_score_options

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
    add_score_options(loc)
    loc.set_defaults(func=_run_loc)

    qa = benchmarks.add_parser("sqa3d-qa", help="SQA3D question answering (EM@1, EM-R, per question type)")
    qa.add_argument("--annotations", required=True, help="official SQA3D annotations JSON")
    qa.add_argument("--predictions", required=True, help="JSON list or JSONL of {question_id, answer}")
    qa.add_argument("--questions", help="official SQA3D questions JSON (question text -> per-type breakdown)")
    add_score_options(qa)
    qa.set_defaults(func=_run_qa)


def _loc_title(title: str, result: Mapping[str, Any]) -> str:
    unit = result["unit"]
    return f"{title} (unit: {unit}, n = {result['n']} {unit}s of {result['n_questions']} questions)"


def _run_loc(args: argparse.Namespace) -> int:
    from loc3r.evaluate.report import run_score

    return run_score(
        args,
        "sqa3d_localization",
        lambda task: task.score_files(
            args.predictions, annotations=args.annotations, questions=args.questions, unit=args.unit, strict=args.strict
        ),
        {"annotations": args.annotations, "predictions": args.predictions, "questions": args.questions},
        title=_loc_title,
        missing=lambda result: f"{result['unit']}s have no prediction (scored as wrong)",
    )


def _run_qa(args: argparse.Namespace) -> int:
    from loc3r.evaluate.report import run_score

    return run_score(
        args,
        "sqa3d",
        lambda task: task.score_files(
            args.predictions, annotations=args.annotations, questions=args.questions, strict=args.strict
        ),
        {"annotations": args.annotations, "predictions": args.predictions, "questions": args.questions},
    )
