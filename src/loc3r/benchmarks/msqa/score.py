"""``loc3r score msqa``: EM@1 / EM-R (+ per MSQA type), BLEU-1..4, METEOR, ROUGE-L, CIDEr (the ScanQA protocol; the
paper's GPT-judged score is not computed) of any model's MSQA predictions."""

from __future__ import annotations

import argparse


def register(benchmarks: argparse._SubParsersAction) -> None:
    """Add ``loc3r score msqa``."""
    from loc3r.evaluate.report import add_score_options, run_references

    msqa = benchmarks.add_parser("msqa", help="MSQA (EM@1, EM-R per type, BLEU-1..4, METEOR, ROUGE-L, CIDEr)")
    msqa.add_argument("--references", required=True,
                      help="the released MSQA file (MSQA_scannet_test_v1.json) or the msqa_references.json of loc3r "
                      "eval")  # fmt: skip
    msqa.add_argument("--predictions", required=True, help="JSON list or JSONL of {question_id, answer}")
    msqa.add_argument("--no-meteor", action="store_true", help="skip METEOR (it starts a Java process)")
    add_score_options(msqa)
    msqa.set_defaults(func=run_references, score_task="msqa")
