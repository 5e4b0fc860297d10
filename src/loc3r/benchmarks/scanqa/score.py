"""``loc3r score scanqa``: EM@1, BLEU-1..4, METEOR, ROUGE-L, CIDEr of any model's ScanQA predictions."""

from __future__ import annotations

import argparse


def register(benchmarks: argparse._SubParsersAction) -> None:
    from loc3r.evaluate.report import add_score_command

    add_score_command(benchmarks, "scanqa", "scanqa", "ScanQA (EM@1, BLEU-1..4, METEOR, ROUGE-L, CIDEr)", {
        "references": "ScanQA file with answers (e.g. ScanQA_v1.0_val.json)",
        "predictions": "JSON list or JSONL of {question_id, answer} (answer may be a list of candidates, or "
        "answer_top10)",
    }, meteor=True)  # fmt: skip
