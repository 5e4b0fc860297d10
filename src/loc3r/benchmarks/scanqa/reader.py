"""ScanQA (question answering on ScanNet scenes) as :class:`~loc3r.data.schema.ClipSample`.

Files (DESIGN.md §4): ``ScanQA_v1.0_{train,val,test_w_obj,test_wo_obj}.json``, a JSON list of records
``{question_id, scene_id, question, answers[], object_ids[], object_names[]}``; the test files have no
``answers`` (their samples carry ``answer=None``). ScanQA has no situation: samples get
``situation_text=None`` (the processor then uses the pseudo-situation) and no agent pose. Frames, poses
and world points come from the scene's ScanNet export (:class:`~loc3r.data.scannet.ScanNetFrameSource`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loc3r.core.io import read_json
from loc3r.data.builders import SceneRecordsDataset, report_bad_record, scene_records_builder, text_field
from loc3r.data.scannet import ScanNetClip, ScanNetFrameSource
from loc3r.data.schema import ClipSample, SampleError
from loc3r.data.video import LoadReport, iter_json_records

SCANQA_SPLITS = ("train", "val", "test_w_obj", "test_wo_obj")


@dataclass
class ScanQARecord:
    question_id: str
    scene_id: str
    question: str
    answers: list[str]
    object_ids: list[int]
    object_names: list[str]


def scanqa_path(root: str | Path, split: str) -> Path:
    """The ScanQA JSON of ``split`` under ``root`` (``root`` itself when it is a file)."""
    root = Path(root)
    if root.is_file():
        return root
    if split not in SCANQA_SPLITS:
        raise ValueError(f"unknown ScanQA split {split!r}; expected one of {SCANQA_SPLITS}")
    for path in (root / f"ScanQA_v1.0_{split}.json", root / "qa" / f"ScanQA_v1.0_{split}.json"):
        if path.is_file():
            return path
    raise SampleError(f"{root / f'ScanQA_v1.0_{split}.json'}: ScanQA {split} file is missing")


def _str_list(value: Any, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SampleError(f"{where}: field {key!r} must be a list of strings, got {value!r}")
    return list(value)


def load_scanqa(
    root: str | Path,
    split: str = "val",
    *,
    strict: bool = False,
    report: LoadReport | None = None,
) -> tuple[list[ScanQARecord], LoadReport]:
    """Load a ScanQA split from ``root/ScanQA_v1.0_{split}.json`` (or ``root`` itself if it is a file).

    Malformed records (missing / wrongly typed field, duplicated ``question_id``) are reported with file,
    record and field, and skipped (or raise when ``strict``).
    """
    report = report if report is not None else LoadReport(f"scanqa {split}", strict=strict)
    path = scanqa_path(root, split)
    records: list[ScanQARecord] = []
    seen: set[str] = set()
    for index, item in iter_json_records(read_json(path, "ScanQA file"), path, None):
        record = f"[{index}]"
        try:
            if not isinstance(item, dict):
                raise SampleError(f"{path} {record}: record must be an object")
            qid = item.get("question_id")
            if not isinstance(qid, str | int):
                raise SampleError(f"{path} {record}: field 'question_id' must be a string")
            record = f"question_id={qid}"
            where = f"{path} {record}"
            if str(qid) in seen:
                raise SampleError(f"{where}: field 'question_id' is duplicated")
            scene_id, question = (text_field(item.get(k), where, k) for k in ("scene_id", "question"))
            answers = _str_list(item.get("answers", []), where, "answers")
            object_ids_raw = item.get("object_ids", [])
            if not isinstance(object_ids_raw, list) or not all(isinstance(v, int) for v in object_ids_raw):
                raise SampleError(f"{where}: field 'object_ids' must be a list of integers")
            object_names = _str_list(item.get("object_names", []), where, "object_names")
        except SampleError as err:
            report_bad_record(report, err, path, record)
            continue
        seen.add(str(qid))
        records.append(ScanQARecord(str(qid), scene_id, question, answers, list(object_ids_raw), object_names))
    report.count("records_loaded", len(records))
    return records, report


@dataclass
class ScanQADataset(SceneRecordsDataset):
    """ScanQA records + scene frames -> :class:`ClipSample` (task ``"scanqa"``)."""

    records: Sequence[ScanQARecord]
    frames: ScanNetFrameSource
    task: str = "scanqa"

    def to_sample(self, record: ScanQARecord, clip: ScanNetClip) -> ClipSample:
        return self.clip_sample(
            record,
            clip,
            {
                "question_id": record.question_id,
                "object_ids": list(record.object_ids),
                "object_names": list(record.object_names),
            },
            sample_id=f"scanqa-{record.question_id}",
            question=record.question,
            answer=record.answers[0] if record.answers else None,
            answers=list(record.answers),
        )


def _read(spec: Any, scene_meta: str | None, scans_root: str | None, strict: bool) -> tuple[list[ScanQARecord], Any]:
    return load_scanqa(spec.root, spec.split, strict=strict)


#: ScanQA (``ScanQA_v1.0_{split}.json`` in ``root``) on ScanNet frames in ``scannet_root`` (or a prepared ``cache``)
build_scanqa = scene_records_builder("scanqa", _read, ScanQADataset)

DATASET_KINDS = {"scanqa": build_scanqa}
