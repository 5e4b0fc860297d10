"""Beacon3D QA on its own files: per knowledge type, overall (case) and overall (object).

* Data: an evaluation config's ``data`` of kind ``scanqa`` whose ``root`` is Beacon3D's ScanQA-format file
  (``data/<domain>/<domain>_qa.json`` of the benchmark, or ``beacon3d/<split>/synthrooms_qa.json`` written by
  ``loc3r synth``); frames from the scenes' ScanNet exports. The object-centric metadata is the file next to it,
  named as the benchmark names it: ``metadata_<domain>_qa.json``.
* Prompt (pinned): user text ``"[{pseudo-situation} <Pos> <Ori>] {question}\\n{prompt.suffix}"``, greedy decoding.
* Prediction record (the ``loc3r score beacon3d`` input): ``OUT/beacon3d_predictions.json``, a JSON list of
  ``{"question_id": str, "answer": str}``.
* Score: :func:`loc3r.benchmarks.beacon3d.metric.score_beacon3d` (the official rules; no LLM judge here — answers that
  do not match by rule score the minimum, see that module).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loc3r.data.schema import SampleError
from loc3r.evaluate.task import AnswerFileTask, Task, write_json_file

if TYPE_CHECKING:
    from loc3r.evaluate.benchmark_config import EvalConfig


def metadata_file(qa_file: str | Path) -> Path:
    """``metadata_<name>`` next to Beacon3D's ScanQA-format ``<name>`` (e.g. ``metadata_scannet_qa.json``)."""
    qa_file = Path(qa_file)
    path = qa_file.with_name(f"metadata_{qa_file.name}")
    if not path.is_file():
        raise SampleError(f"{path}: Beacon3D metadata file is missing (expected next to {qa_file})")
    return path


class Beacon3DTask(AnswerFileTask):
    """Beacon3D object-centric QA (see the module docstring)."""

    name = "beacon3d"
    data_kinds = ("scanqa",)
    title = "Beacon3D QA"
    predictions_file = "beacon3d_predictions.json"
    score_command = "beacon3d"
    metric = (
        "Beacon3D evaluate_qa.py: clean_answer; EM or (binary and EM-R) -> 5, else the prediction's judge "
        "'score' 1..5 (no LLM judge runs here: 1); (mean-1)/4*100 per type and case; object = all questions >= 4"
    )

    def score_files(self, predictions: str | Path, *, metadata: str | Path, strict: bool = False) -> dict[str, Any]:
        """:func:`loc3r.benchmarks.beacon3d.metric.score_beacon3d` against Beacon3D's object-centric metadata."""
        from loc3r.benchmarks.beacon3d.metric import score_beacon3d
        from loc3r.core.io import read_json_or_jsonl
        from loc3r.evaluate.records import load_records

        return score_beacon3d(
            read_json_or_jsonl(metadata),
            load_records(predictions),
            strict=strict,
            metadata_source=str(metadata),
            predictions_source=str(predictions),
        )

    def score(
        self, records: Sequence[dict[str, Any]], config: EvalConfig, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from loc3r.core.io import read_json_or_jsonl

        meta_path = metadata_file(config.data.root)
        if any(r.get("subset") for r in records):
            ids = {str(r["question_id"]) for r in records}
            metadata = _restrict_metadata(read_json_or_jsonl(meta_path), ids)
            meta_path = out_dir / "beacon3d_metadata_subset.json"
            write_json_file(meta_path, metadata)
        return self.score_against(records, out_dir, metadata=meta_path)


def _restrict_metadata(metadata: Any, ids: set[str]) -> dict[str, Any]:
    """The objects whose questions were all evaluated (an object is the unit; a partial one is dropped)."""
    from loc3r.benchmarks.beacon3d.reader import beacon3d_records

    items, _ = beacon3d_records(metadata)
    keep: dict[tuple[str, str], bool] = {}
    for item in items:
        key = (item.scene_id, item.object_id)
        keep[key] = keep.get(key, True) and item.question_id in ids
    out: dict[str, Any] = {}
    for scene_id, classes in metadata.items():
        for cls, objects in classes.items():
            for obj_id, entry in objects.items():
                if keep.get((scene_id, str(obj_id))):
                    out.setdefault(scene_id, {}).setdefault(cls, {})[obj_id] = entry
    if not out:
        raise SampleError("the evaluated subset covers no whole Beacon3D object; raise max_samples")
    return out


TASKS: dict[str, type[Task]] = {"beacon3d": Beacon3DTask}
