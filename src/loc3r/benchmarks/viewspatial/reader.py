"""ViewSpatial-Bench (perspective taking from the camera's and from a person's view) as :class:`ClipSample`.

Release format (``eval/ViewSpatial-Bench.json`` of ZJU-REAL/ViewSpatial-Bench; the same records as the HF dataset
``lidingm/ViewSpatial-Bench``): a JSON list (JSON Lines accepted too) of ``{question_type, image_path: [paths],
question, answer: "A. right", choices: "A. right\\nB. front-up\\nC. ...\\nD. ..."}``; no ids (the record index is
the id). ``image_path`` entries are relative to the release root (``ViewSpatial-Bench/scannetv2_val/<scene>/
original_images/<n>.jpg`` for the ScanNet tasks, ``ViewSpatial-Bench/val2017/<id>.jpg`` for the COCO ones); the
option ``image_root`` names that root (default: the folder above the JSON file's folder, i.e. the repository
layout ``eval/ViewSpatial-Bench.json`` + ``ViewSpatial-Bench/``).

Frames: the record's images in file order (one image for four of the five types; up to ~25 frames of a ScanNet
scan for *Person perspective - Scene Simulation Relative Direction*, the situated question "standing at X facing
Y, where is Z?" asked without a pose), resized to the first image's size (or ``image_size``); more images than
``num_frames`` are sub-sampled uniformly, fewer are kept as they are (never repeated). No poses or depth: the
situation of a Scene Simulation question is in its text, as in SQA3D.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.data.builders import log_report, parse_size, read_record_rows
from loc3r.data.schema import ClipSample
from loc3r.data.video import LoadReport, read_rgb, uniform_indices

_REQUIRED = ("question_type", "image_path", "question", "answer", "choices")


@dataclass
class ViewSpatialRecord:
    id: str
    question_type: str
    image_paths: list[str]
    question: str
    answer: str
    choices: str

    @property
    def options(self) -> list[str]:
        return [line.strip() for line in self.choices.split("\n") if line.strip()]

    @property
    def scene_id(self) -> str:
        """The ScanNet scene (``scene0011_00``) or the COCO image stem of the record's first image."""
        parts = Path(self.image_paths[0]).parts
        scenes = [p for p in parts if p.startswith("scene")]
        return scenes[0] if scenes else Path(self.image_paths[0]).stem


def load_viewspatial(
    path: str | Path, *, strict: bool = False, report: LoadReport | None = None
) -> tuple[list[ViewSpatialRecord], LoadReport]:
    """The records of a ViewSpatial-Bench file; a malformed record is reported naming file, record and field
    (an error when ``strict``) and left out."""
    report = report if report is not None else LoadReport("viewspatial", strict=strict)
    path = Path(path)
    data = read_record_rows(path, "ViewSpatial-Bench")
    records: list[ViewSpatialRecord] = []
    for index, row in enumerate(data):
        where = f"{path} record {index}"
        problem = None
        if not isinstance(row, dict):
            problem = ("record", "record must be an object")
        else:
            for key in _REQUIRED:
                value = row.get(key)
                if key == "image_path":
                    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                        problem = (key, "field 'image_path' must be a non-empty list of paths")
                elif not isinstance(value, str) or not value.strip():
                    problem = (key, f"field {key!r} is missing or empty")
                if problem:
                    break
        if problem is None and not any(line.strip()[:1] == row["answer"].strip()[:1]
                                       for line in row["choices"].split("\n")):  # fmt: skip
            problem = ("answer", f"field 'answer' {row['answer']!r} is not one of the choices")
        if problem is not None:
            report.error("bad_record", f"{where}: {problem[1]}", file=path, record=index, field=problem[0])
            continue
        records.append(
            ViewSpatialRecord(
                id=str(index),
                question_type=str(row["question_type"]),
                image_paths=[str(p) for p in row["image_path"]],
                question=str(row["question"]),
                answer=str(row["answer"]),
                choices=str(row["choices"]),
            )
        )
    report.count("records_loaded", len(records))
    return records, report


@dataclass
class ViewSpatialDataset:
    """ViewSpatial-Bench records + their images -> :class:`ClipSample` (task ``"viewspatial"``, no poses)."""

    records: Sequence[ViewSpatialRecord]
    image_root: str | Path
    num_frames: int = 32
    image_size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ClipSample:
        record = self.records[index]
        paths = record.image_paths
        picked = uniform_indices(len(paths), self.num_frames) if len(paths) > self.num_frames else range(len(paths))
        size = self.image_size
        frames = []
        for i in picked:
            image = read_rgb(Path(self.image_root) / paths[int(i)], size, record=f"id={record.id}")
            size = size or image.shape[:2]
            frames.append(image)
        return ClipSample(
            sample_id=f"viewspatial-{record.id}",
            scene_id=record.scene_id,
            task="viewspatial",
            frames=np.stack(frames),
            question=record.question,
            answer=record.answer,
            answers=[record.answer],
            options=record.options,
            frame_indices=np.asarray(list(picked), dtype=np.int64),
            meta={"id": record.id, "question_type": record.question_type, "choices": record.choices},
        ).validate()


def build_viewspatial(
    spec: Any, num_frames: int, image_root: str | None = None, image_size: Any = None, strict: bool = False
) -> ViewSpatialDataset:
    """The ``viewspatial`` dataset kind: ``root`` = the ViewSpatial-Bench JSON; images under ``image_root``
    (default: the folder above the JSON's folder)."""
    records, report = load_viewspatial(spec.root, strict=strict)
    log_report(report, f"viewspatial ({spec.root})")
    root = Path(image_root) if image_root is not None else Path(spec.root).resolve().parent.parent
    return ViewSpatialDataset(records, root, num_frames=num_frames, image_size=parse_size(image_size, "image_size"))


DATASET_KINDS = {"viewspatial": build_viewspatial}
