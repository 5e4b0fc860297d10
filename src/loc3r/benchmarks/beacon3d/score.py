"""``loc3r score beacon3d``: Beacon3D QA per knowledge type, overall (case) and overall (object)."""

from __future__ import annotations

import argparse


def register(benchmarks: argparse._SubParsersAction) -> None:
    """Add ``loc3r score beacon3d``."""
    from loc3r.evaluate.report import add_score_options

    beacon = benchmarks.add_parser("beacon3d", help="Beacon3D QA (per type, overall case / object)")
    beacon.add_argument("--metadata", required=True, help="Beacon3D metadata_<domain>_qa.json")
    beacon.add_argument(
        "--predictions",
        required=True,
        help="JSON list or JSONL of {question_id (ScanQA-format id), answer[, score: judge score 1..5]}",
    )
    add_score_options(beacon)
    beacon.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from loc3r.evaluate.report import run_score

    return run_score(
        args,
        "beacon3d",
        lambda task: task.score_files(args.predictions, metadata=args.metadata, strict=args.strict),
        {"metadata": args.metadata, "predictions": args.predictions},
    )
