"""``loc3r score viewspatial``: ViewSpatial-Bench accuracy, overall and per question type."""

from __future__ import annotations

import argparse


def register(benchmarks: argparse._SubParsersAction) -> None:
    """Add ``loc3r score viewspatial``."""
    from loc3r.evaluate.report import add_predictions_command

    add_predictions_command(
        benchmarks,
        "viewspatial",
        "viewspatial",
        "ViewSpatial-Bench (last-line option letter; overall and per question type)",
        "ViewSpatial-Bench records {question_type, answer, ...} each with 'prediction'",
    )
