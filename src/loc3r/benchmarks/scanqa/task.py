"""ScanQA on the real files: EM@1 (+ EM-R), BLEU-1..4, METEOR, ROUGE-L, CIDEr (the COCO caption definitions).

* Data: an evaluation config's ``data`` of kind ``scanqa`` (``ScanQA_v1.0_{split}.json`` in ``data.root``,
  :func:`loc3r.benchmarks.scanqa.reader.build_scanqa`); one sample per question, no situation (the processor uses the
  pseudo-situation when the model has situation heads).
* Prompt (pinned): user text ``"[{pseudo-situation} <Pos> <Ori>] {question}\\n{prompt.suffix}"``; greedy
  decoding with ``generation.max_new_tokens``. A peer project moved CIDEr by ~4 points with the suffix alone
  (DESIGN.md §6), which is why it is printed with every score.
* Prediction record (the ``loc3r score scanqa`` input): ``OUT/scanqa_predictions.json``, a JSON list of
  ``{"question_id": str, "answer": str}``.
* Score: :func:`loc3r.benchmarks.scanqa.metric.score_scanqa` against the same ScanQA file (its ``answers``); METEOR
  needs Java and is reported as unavailable without it. A split without answers (``test_w_obj`` /
  ``test_wo_obj``) cannot be scored here: the error says so (submit the predictions file to the server).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loc3r.evaluate.task import AnswerFileTask, Task, restrict_references

if TYPE_CHECKING:
    from loc3r.evaluate.benchmark_config import EvalConfig


class ScanQATask(AnswerFileTask):
    """ScanQA open-answer QA scored with the caption metrics (see the module docstring)."""

    name = "scanqa"
    data_kinds = ("scanqa",)
    title = "ScanQA"
    predictions_file = "scanqa_predictions.json"
    score_command = "scanqa"
    metric = "clean_answer; pycocoevalcap BLEU/METEOR/ROUGE-L/CIDEr on the first answer, x100"

    def score_files(
        self, predictions: str | Path, *, references: str | Path, strict: bool = False, meteor: bool = True
    ) -> dict[str, Any]:
        """:func:`loc3r.benchmarks.scanqa.metric.score_scanqa` against a ScanQA-format file with answers."""
        from loc3r.benchmarks.scanqa.metric import score_scanqa
        from loc3r.evaluate.records import load_records

        return score_scanqa(
            load_records(references),
            load_records(predictions),
            strict=strict,
            meteor=meteor,
            references_source=str(references),
            predictions_source=str(predictions),
        )

    def score(
        self, records: Sequence[dict[str, Any]], config: EvalConfig, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from loc3r.benchmarks.scanqa.reader import scanqa_path
        from loc3r.evaluate.records import load_records

        ref_path = scanqa_path(config.data.root, config.data.split)  # the file the loader read
        if any(r.get("subset") for r in records):
            ids = {str(r["question_id"]) for r in records}
            ref_path = restrict_references(
                load_records(ref_path), None, ids, out_dir / "scanqa_references_subset.json", ref_path
            )
        return self.score_against(records, out_dir, references=ref_path)


TASKS: dict[str, type[Task]] = {"scanqa": ScanQATask}
