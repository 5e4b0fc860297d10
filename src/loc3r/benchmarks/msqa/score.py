"""``loc3r score msqa``: EM@1 / EM-R (+ per MSQA type), BLEU-1..4, METEOR, ROUGE-L, CIDEr (the ScanQA protocol; the
paper's GPT-judged score is not computed) of any model's MSQA predictions."""

from __future__ import annotations

import argparse


def register(benchmarks: argparse._SubParsersAction) -> None:
    from loc3r.evaluate.report import add_score_command

    add_score_command(benchmarks, "msqa", "msqa", "MSQA (EM@1, EM-R per type, BLEU-1..4, METEOR, ROUGE-L, CIDEr)", {
        "references": "the released MSQA file (MSQA_scannet_test_v1.json) or the msqa_references.json of loc3r eval",
        "predictions": "JSON list or JSONL of {question_id, answer}",
    }, meteor=True)  # fmt: skip
