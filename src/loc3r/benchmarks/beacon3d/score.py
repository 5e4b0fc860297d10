"""``loc3r score beacon3d``: Beacon3D QA per knowledge type, overall (case) and overall (object)."""

from __future__ import annotations

import argparse


def register(benchmarks: argparse._SubParsersAction) -> None:
    from loc3r.evaluate.report import add_score_command

    add_score_command(benchmarks, "beacon3d", "beacon3d", "Beacon3D QA (per type, overall case / object)", {
        "metadata": "Beacon3D metadata_<domain>_qa.json",
        "predictions": "JSON list or JSONL of {question_id (ScanQA-format id), answer[, score: judge score 1..5]}",
    })  # fmt: skip
