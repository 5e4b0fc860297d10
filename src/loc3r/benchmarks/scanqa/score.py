"""``loc3r score scanqa``: EM@1, BLEU-1..4, METEOR, ROUGE-L, CIDEr of any model's ScanQA predictions."""

from __future__ import annotations

import argparse


def register(benchmarks: argparse._SubParsersAction) -> None:
    """Add ``loc3r score scanqa``."""
    from loc3r.evaluate.report import add_score_options, run_references

    scanqa = benchmarks.add_parser("scanqa", help="ScanQA (EM@1, BLEU-1..4, METEOR, ROUGE-L, CIDEr)")
    scanqa.add_argument("--references", required=True, help="ScanQA file with answers (e.g. ScanQA_v1.0_val.json)")
    scanqa.add_argument(
        "--predictions",
        required=True,
        help="JSON list or JSONL of {question_id, answer} (answer may be a list of candidates, or answer_top10)",
    )
    scanqa.add_argument("--no-meteor", action="store_true", help="skip METEOR (it starts a Java process)")
    add_score_options(scanqa)
    scanqa.set_defaults(func=run_references, score_task="scanqa")
