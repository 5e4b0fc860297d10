"""``loc3r score vsibench`` (the 8 VSI-Bench tasks and ``overall``) and ``loc3r score vsibench-debiased`` (the same
metric on VSI-Bench-debiased records): VSI-Bench records that each carry the model's ``prediction``."""

from __future__ import annotations

import argparse


def register(benchmarks: argparse._SubParsersAction) -> None:
    """Add ``loc3r score vsibench`` and ``vsibench-debiased``."""
    from loc3r.evaluate.report import add_predictions_command

    add_predictions_command(benchmarks, "vsibench", "vsibench", "VSI-Bench (MC accuracy, MRA, 8 tasks and overall)",
                            "VSI-Bench records each with 'prediction'")  # fmt: skip
    add_predictions_command(benchmarks, "vsibench-debiased", "vsibench_debiased",
                            "VSI-Bench-debiased (VSI-Bench's metric on the debiased records)",
                            "VSI-Bench records each with 'prediction'")  # fmt: skip
