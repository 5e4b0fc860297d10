"""``loc3r score sqa3d-loc`` (Acc@0.5m/1.0m/15°/30° per situation; ``--unit question`` scores every question entry)
and ``loc3r score sqa3d-qa`` (EM@1, EM-R, per question type) on any model's prediction files."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any


def register(benchmarks: argparse._SubParsersAction) -> None:
    from loc3r.evaluate.report import add_score_command

    loc = add_score_command(benchmarks, "sqa3d-loc", "sqa3d_localization",
        "SQA3D situation localization (Acc@0.5m/1.0m/15deg/30deg)", {
        "annotations": "official SQA3D annotations JSON ({'annotations': [...]})",
        "predictions": "JSON list (or JSONL) of {question_id, position{x,y,z}, rotation{_x,_y,_z,_w}} "
        "or {question_id, candidates: [<=3 {position, rotation}]}",
        "questions": "official SQA3D questions JSON: situations are then (scene, situation text); without it, "
        "(scene, pose)",
    }, optional=("questions",), score_title=_loc_title, score_missing=_loc_missing)  # fmt: skip
    loc.add_argument("--unit", choices=("situation", "question"), default="situation",
                     help="count each situation once (default, the paper's 719-situation test set) or every question "
                     "entry")  # fmt: skip
    add_score_command(benchmarks, "sqa3d-qa", "sqa3d", "SQA3D question answering (EM@1, EM-R, per question type)", {
        "annotations": "official SQA3D annotations JSON",
        "predictions": "JSON list or JSONL of {question_id, answer}",
        "questions": "official SQA3D questions JSON (question text -> per-type breakdown)",
    }, optional=("questions",))  # fmt: skip


def _loc_title(title: str, result: Mapping[str, Any]) -> str:
    unit = result["unit"]
    return f"{title} (unit: {unit}, n = {result['n']} {unit}s of {result['n_questions']} questions)"


def _loc_missing(result: Mapping[str, Any]) -> str:
    return f"{result['unit']}s have no prediction (scored as wrong)"
