"""``loc3r score vsisuper-recall|vsisuper-count|vsisuper-count-streaming``: VSI-SUPER's VSR accuracy, VSC MRA and VSC
streaming MRA (per duration / query time) of records that each carry the model's ``prediction``."""

from __future__ import annotations

import argparse


def register(benchmarks: argparse._SubParsersAction) -> None:
    """Add the three VSI-SUPER sub-commands of ``loc3r score``."""
    from loc3r.evaluate.report import add_predictions_command

    for command, task, help_text, what in (
        ("vsisuper-recall", "vsisuper_recall", "VSI-SUPER Recall (VSR accuracy per duration)",
         "VSI-SUPER-Recall records {answer, type, ...} each with 'prediction'"),
        ("vsisuper-count", "vsisuper_count", "VSI-SUPER Count (VSC MRA per duration)",
         "VSI-SUPER-Count records {answer, split, ...} each with 'prediction'"),
        ("vsisuper-count-streaming", "vsisuper_count_streaming", "VSI-SUPER Count streaming (MRA per query time)",
         "VSI-SUPER-Count streaming records {answers, query_times, split, ...} each with 'prediction': a list "
         "(or JSON text of a list) of counts, one per query time"),
    ):  # fmt: skip
        add_predictions_command(benchmarks, command, task, help_text, what)
