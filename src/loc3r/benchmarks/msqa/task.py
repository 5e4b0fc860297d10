"""MSQA (ScanNet part) on the released file: situated open-answer QA.

* Data: an evaluation config's ``data`` of kind ``msqa`` (``data.root`` = the MSQA JSON file,
  :func:`loc3r.benchmarks.msqa.reader.build_msqa`); one sample per question, with its situation text.
* Prompt (pinned): user text ``"{situation} [<Pos> <Ori>] {question}\\n{prompt.suffix}"``; greedy decoding,
  ``generation.max_new_tokens``.
* Prediction record: MSQA has no official scoring script we can run (the paper's "overall" is a
  GPT-judged score, which needs an LLM judge and is **not** computed here). We score what can be scored
  exactly, with the existing metric functions: EM@1 / EM-R after LEO's ``clean_answer`` (per MSQA ``type``
  as well) and the COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr), i.e. the ScanQA protocol.
  So the files are written in the ScanQA scoring format and ``loc3r score msqa`` re-scores them (with the per-type
  EM too; ``--references`` may also be the released MSQA file):

  - ``OUT/msqa_predictions.json``: ``[{"question_id": <sample id>, "answer": str}]``;
  - ``OUT/msqa_references.json``: ``[{"question_id", "answers": [...], "question", "type", "query_type",
    "scene_id"}]`` — the reference answers as the loader read them (image placeholders replaced by object
    names, as MSR3D's text mode does), of the evaluated questions.
* Score: :func:`loc3r.benchmarks.scanqa.metric.score_scanqa` on those two files, plus
  :func:`loc3r.evaluate.qa.qa_exact_match` grouped by ``type`` (``em@1/<type>``, ``em-r/<type>``, ``n/<type>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loc3r.data.schema import ClipSample
from loc3r.evaluate.task import AnswerFileTask, Task, write_json_file

if TYPE_CHECKING:
    from loc3r.evaluate.benchmark_config import EvalConfig


class MSQATask(AnswerFileTask):
    """MSQA situated QA (see the module docstring)."""

    name = "msqa"
    data_kinds = ("msqa",)
    title = "MSQA (ScanNet)"
    predictions_file = "msqa_predictions.json"
    references_file = "msqa_references.json"
    metric = (
        "ScanQA protocol on MSQA answers: clean_answer EM@1/EM-R (+ per MSQA type), pycocoevalcap "
        "BLEU/METEOR/ROUGE-L/CIDEr x100; the paper's GPT-judged score is not computed"
    )

    score_command = "msqa"

    def score_files(
        self, predictions: str | Path, *, references: str | Path, strict: bool = False, meteor: bool = True
    ) -> dict[str, Any]:
        """The scores of :meth:`score` on files: ``references`` is the released MSQA file (read by the MSQA loader:
        the ids are the ``msqa-<scene>-<index>`` sample ids ``loc3r eval`` writes) or the ``msqa_references.json``
        ``loc3r eval`` wrote; ``predictions`` a JSON list / JSONL of ``{question_id, answer}``."""
        from loc3r.benchmarks.msqa.reader import load_msqa
        from loc3r.benchmarks.scanqa.metric import score_scanqa
        from loc3r.data.schema import SampleError
        from loc3r.evaluate.records import load_records

        raw = load_records(references)
        if raw and all(isinstance(r, dict) and "answers" in r and "question_id" in r
                                                 for r in raw):  # fmt: skip
            refs = raw
        else:  # the released file: the loader's ids, answers (placeholders replaced) and types
            records, report = load_msqa(references, strict=strict)
            if not records:
                raise SampleError(f"{references}: no MSQA record with answers could be read ({report.summary()})")
            refs = [{"question_id": r.sample_id, "answers": list(r.answers), "type": r.type} for r in records]
        return score_scanqa(refs, load_records(predictions), strict=strict, meteor=meteor, types_field="type",
                            references_source=str(references), predictions_source=str(predictions))  # fmt: skip

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        return {
            "question_id": sample.sample_id,
            "answer": prediction.answer,
            "answers": list(sample.answers),
            "question": sample.question,
            "type": sample.meta.get("type", ""),
            "query_type": sample.meta.get("query_type", ""),
        }

    def write_references(self, records: Sequence[dict[str, Any]], out_dir: Path) -> Path:
        keys = ("question_id", "answers", "question", "type", "query_type", "scene_id")
        return write_json_file(out_dir / self.references_file, [{k: r.get(k) for k in keys} for r in records])

    def score(
        self, records: Sequence[dict[str, Any]], config: EvalConfig, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.score_against(records, out_dir, references=self.write_references(records, out_dir))


TASKS: dict[str, type[Task]] = {"msqa": MSQATask}
