"""MSQA (multi-modal situated QA), ScanNet part, as :class:`~loc3r.data.schema.ClipSample`.

Files: the released ``MSQA_scannet_{split}_v1.json`` is an object ``{scene_id: {"response": [qa, ...]}}``
with ``qa = {Q, A[], query_type, type, situation, location[x, y, z], orientation[fx, fy, 0], mode}``
(DESIGN.md §4; the MSR3D repository's ``tools/situation_visualization.py`` reads it this way). MSR3D's
own training files are a JSON list of the same records with ``scan_id``, ``question`` and ``answers``
instead of the dict key, ``Q`` and ``A``; both shapes are read.

Coordinate frame — what we verified and where
----------------------------------------------
``location`` / ``orientation`` are in the frame of SceneVerse's ``pcd_with_global_alignment/<scene>.pth``
point clouds (MSR3D draws the arrow ``location -> location + orientation`` on that cloud). For ScanNet,
that cloud is the scene in ScanNet's **axis-aligned** frame ``A @ p_raw``: MSR3D's ``ScanNetBase`` maps
points of that cloud into a ScanNet camera with ``inv(camera_to_world) @ inv(axis_alignment)``
(``data/datasets/scannet_base.py``, ReferIt3D's ``scans_axis_alignment_matrices.json`` = ScanNet's
``axisAlignment``), and its SQA3D loader (``transform_situation``) rotates SQA3D poses by the same
``A[:3, :3]`` into that cloud. SceneVerse's preprocessing notes a "translation alignment (origin at the
centre of the floor)" for the datasets it aligns itself (3RScan, MultiScan, ARKitScenes); for ScanNet no
script is released, and ScanNet's own ``axisAlignment`` already centres the scene and puts the floor near
z = 0 (the README example ``location`` has z = 0.026). We therefore take

    p_world = location + t,   yaw = atan2(orientation.y, orientation.x)

with ``t = 0`` by default, in the axis-aligned world of :class:`~loc3r.data.scannet.ScanNetScene`. If
your copy of SceneVerse turns out to be translated, put the translation per scene in the scene-meta
JSON (``sceneverse_offset``); it is added to every location of that scene. Because the MSQA frame is the
*aligned* one, a sample whose ScanNet clip has no axis alignment cannot be placed: it gets no agent pose
and the report says why (never a silently wrong target).

Object placeholders of the interleaved image mode (``<chair-3-IMG>``) are replaced by the object name, as
MSR3D's text-only mode does (``replace_all_imgs_with_txt``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.core.geometry import wrap_angle
from loc3r.core.io import read_json
from loc3r.data.builders import (
    SceneRecordsDataset,
    report_bad_record,
    scene_meta_table,
    scene_records_builder,
    text_field,
)
from loc3r.data.scannet import ScanNetClip, ScanNetFrameSource, SceneMetaTable
from loc3r.data.schema import ClipSample, SampleError
from loc3r.data.video import LoadReport

_IMG_PLACEHOLDER = re.compile(r"<([^<>-]+)-\d+-IMG>")


def strip_image_placeholders(text: str) -> str:
    """``"the <chair-3-IMG> on my left"`` -> ``"the chair on my left"``."""
    return _IMG_PLACEHOLDER.sub(lambda m: m.group(1), text)


def msqa_to_world(
    location: Sequence[float] | np.ndarray,
    orientation: Sequence[float] | np.ndarray,
    offset: Sequence[float] | np.ndarray | None = None,
    where: str = "record",
) -> tuple[np.ndarray, float]:
    """MSQA ``location`` / ``orientation`` (SceneVerse frame) -> world ``(position (3,), yaw)``.

    ``position = location + offset`` (offset 0 by default), ``yaw = atan2(f_y, f_x)`` wrapped to
    [-pi, pi). A zero or non-finite orientation is an error naming ``where``.
    """
    loc = np.asarray(location, dtype=np.float64).reshape(-1)
    ori = np.asarray(orientation, dtype=np.float64).reshape(-1)
    if loc.shape != (3,) or not np.isfinite(loc).all():
        raise SampleError(f"{where}: field 'location' must be 3 finite numbers, got {loc.tolist()}")
    if ori.shape not in ((2,), (3,)) or not np.isfinite(ori).all():
        raise SampleError(f"{where}: field 'orientation' must be 2 or 3 finite numbers, got {ori.tolist()}")
    if math.hypot(ori[0], ori[1]) < 1e-8:
        raise SampleError(f"{where}: field 'orientation' has no horizontal component ({ori.tolist()})")
    if offset is not None:
        loc = loc + np.asarray(offset, dtype=np.float64).reshape(3)
    return loc, float(wrap_angle(math.atan2(ori[1], ori[0])))


@dataclass
class MSQARecord:
    """One MSQA question. ``position_aligned`` / ``yaw_aligned``: agent in the axis-aligned world."""

    sample_id: str
    scene_id: str
    question: str
    answers: list[str]
    situation: str
    query_type: str
    type: str
    mode: str
    location: np.ndarray
    orientation: np.ndarray
    position_aligned: np.ndarray
    yaw_aligned: float


def _records_of(data: Any, path: Path) -> Iterator[tuple[str, str | None, Any]]:
    """Yield ``(record_name, scene_id or None, item)`` for both file shapes."""
    if isinstance(data, dict):
        for scene_id, entry in data.items():
            responses = entry.get("response") if isinstance(entry, dict) else None
            if not isinstance(responses, list):
                raise SampleError(f"{path}: scene {scene_id!r}: expected an object with a 'response' list")
            for k, item in enumerate(responses):
                yield f"{scene_id}/response[{k}]", scene_id, item
    elif isinstance(data, list):
        for k, item in enumerate(data):
            yield f"[{k}]", None, item
    else:
        raise SampleError(f"{path}: expected an object of scene id -> {{'response': [...]}} or a list of records")


def _first(item: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in item:
            return item[key]
    return None


def load_msqa(
    path: str | Path,
    *,
    scene_meta: SceneMetaTable | None = None,
    strict: bool = False,
    report: LoadReport | None = None,
) -> tuple[list[MSQARecord], LoadReport]:
    """Load MSQA records (ScanNet part) and convert their situations to the world frame.

    ``scene_meta`` may give a per-scene ``sceneverse_offset`` (see the module docstring). Malformed
    records are reported with file, record and field, and skipped (or raise when ``strict``).
    """
    report = report if report is not None else LoadReport("msqa", strict=strict)
    path = Path(path)
    data = read_json(path, "MSQA file")
    records: list[MSQARecord] = []
    for record_name, scene_key, item in _records_of(data, path):
        where = f"{path} {record_name}"
        try:
            if not isinstance(item, dict):
                raise SampleError(f"{where}: record must be an object")
            scene_id = text_field(scene_key or _first(item, ("scan_id", "scene_id")), where, "scan_id")
            question = text_field(_first(item, ("Q", "question")), where, "Q")
            answers = _first(item, ("A", "answers"))
            if isinstance(answers, str):
                answers = [answers]
            if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                raise SampleError(f"{where}: field 'A' must be a list of strings")
            situation = text_field(item.get("situation"), where, "situation")
            offset = None
            if scene_meta is not None and scene_id in scene_meta:
                offset = scene_meta.get(scene_id).sceneverse_offset
            location = item.get("location")
            orientation = item.get("orientation")
            if location is None:
                raise SampleError(f"{where}: field 'location' is missing")
            if orientation is None:
                raise SampleError(f"{where}: field 'orientation' is missing")
            position, yaw = msqa_to_world(location, orientation, offset, where)
        except SampleError as err:
            report_bad_record(report, err, path, record_name)
            continue
        index = item.get("index")
        sample_id = f"msqa-{scene_id}-{index}" if index is not None else f"msqa-{record_name}"
        records.append(
            MSQARecord(
                sample_id=sample_id,
                scene_id=scene_id,
                question=strip_image_placeholders(question),
                answers=[strip_image_placeholders(a) for a in answers],
                situation=strip_image_placeholders(situation),
                query_type=str(item.get("query_type", "")),
                type=str(item.get("type", "")),
                mode=str(item.get("mode", "")),
                location=np.asarray(location, dtype=np.float64).reshape(3),
                orientation=np.asarray(orientation, dtype=np.float64).reshape(-1),
                position_aligned=position,
                yaw_aligned=yaw,
            )
        )
    report.count("records_loaded", len(records))
    return records, report


@dataclass
class MSQADataset(SceneRecordsDataset):
    """MSQA records + ScanNet frames -> :class:`ClipSample` (task ``"msqa"``)."""

    records: Sequence[MSQARecord]
    frames: ScanNetFrameSource
    task: str = "msqa"

    def to_sample(self, record: MSQARecord, clip: ScanNetClip) -> ClipSample:
        position: np.ndarray | None = record.position_aligned
        yaw: float | None = record.yaw_aligned
        if not clip.axis_aligned:
            # MSQA poses live in the axis-aligned frame; the frames of this clip do not.
            self.frames.report.skip("msqa_pose_without_axis_alignment", record.scene_id)
            position, yaw = None, None
        return self.clip_sample(
            record,
            clip,
            {
                "query_type": record.query_type,
                "type": record.type,
                "mode": record.mode,
                "msqa_location": record.location.tolist(),
                "msqa_orientation": record.orientation.tolist(),
            },
            sample_id=record.sample_id,
            question=record.question,
            answer=record.answers[0] if record.answers else None,
            answers=list(record.answers),
            situation_text=record.situation,
            agent_position=position,
            agent_yaw=yaw,
        )


def _read(spec: Any, scene_meta: str | None, scans_root: str | None, strict: bool) -> tuple[list[MSQARecord], Any]:
    return load_msqa(spec.root, scene_meta=scene_meta_table(scene_meta, scans_root), strict=strict)


#: MSQA (ScanNet part; ``root`` is the MSQA JSON file) on ScanNet frames in ``scannet_root`` (or a prepared ``cache``)
build_msqa = scene_records_builder("msqa", _read, MSQADataset)
DATASET_KINDS = {"msqa": build_msqa}
