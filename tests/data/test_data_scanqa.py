"""ScanQA loader: the records as on disk, test files without answers, bad records, ClipSamples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import K_COLOR, K_DEPTH, axis_alignment, make_frames
from loc3r.benchmarks.scanqa.reader import ScanQADataset, load_scanqa
from loc3r.data.scannet import ScanNetFrameSource, export_scannet_scene
from loc3r.data.schema import PSEUDO_SITUATION, SampleError

VAL = [
    {
        "answers": ["brown wooden table", "table"],
        "object_ids": [12],
        "object_names": ["table"],
        "question": "What is in the right corner of room by curtains?",
        "question_id": "val-scene0050-0",
        "scene_id": "scene0050_00",
    },
    {
        "answers": ["white"],
        "object_ids": [3, 4],
        "object_names": ["chair", "chair"],
        "question": "What color are the chairs?",
        "question_id": "val-scene0050-1",
        "scene_id": "scene0050_00",
    },
]


def test_records_are_what_the_file_says(tmp_path: Path) -> None:
    (tmp_path / "ScanQA_v1.0_val.json").write_text(json.dumps(VAL))
    records, report = load_scanqa(tmp_path, "val")
    assert report.ok and len(records) == 2
    r = records[0]
    assert (r.question_id, r.scene_id, r.answers) == (
        "val-scene0050-0",
        "scene0050_00",
        ["brown wooden table", "table"],
    )
    assert r.object_ids == [12] and r.object_names == ["table"]
    test = [{k: v for k, v in VAL[0].items() if k != "answers"}]
    (tmp_path / "ScanQA_v1.0_test_wo_obj.json").write_text(json.dumps(test))
    records, report = load_scanqa(tmp_path, "test_wo_obj")
    assert report.ok and records[0].answers == []


def test_bad_records_are_reported(tmp_path: Path) -> None:
    bad = [dict(VAL[0]), dict(VAL[1], answers="white"), dict(VAL[1], question_id="x", scene_id=""), dict(VAL[0])]
    (tmp_path / "ScanQA_v1.0_train.json").write_text(json.dumps(bad))
    records, report = load_scanqa(tmp_path, "train")
    assert len(records) == 1
    assert [(e.record, e.field) for e in report.errors] == [
        ("question_id=val-scene0050-1", "answers"),
        ("question_id=x", "scene_id"),
        ("question_id=val-scene0050-0", "question_id"),
    ]
    with pytest.raises(SampleError, match="answers"):
        load_scanqa(tmp_path, "train", strict=True)
    with pytest.raises(SampleError, match="ScanQA_v1.0_val.json"):
        load_scanqa(tmp_path, "val")


def test_clip_samples(tmp_path: Path) -> None:
    colors, depths, poses = make_frames(5)
    export_scannet_scene(
        tmp_path / "frames" / "scene0050_00", colors, depths, poses, K_COLOR, K_DEPTH, axis_alignment=axis_alignment()
    )
    (tmp_path / "ScanQA_v1.0_val.json").write_text(json.dumps(VAL))
    records, _ = load_scanqa(tmp_path, "val")
    dataset = ScanQADataset(records, ScanNetFrameSource(tmp_path / "frames", num_frames=3, points_size=(6, 8)))
    samples = list(dataset.samples())
    assert [s.sample_id for s in samples] == ["scanqa-val-scene0050-0", "scanqa-val-scene0050-1"]
    s = samples[0]
    assert s.task == "scanqa" and s.answer == "brown wooden table" and s.answers == VAL[0]["answers"]
    assert s.situation_text is None and s.agent_position is None  # the processor uses the pseudo-situation
    assert PSEUDO_SITUATION
    assert s.frames.shape == (3, 48, 64, 3) and s.poses.shape == (3, 4, 4) and s.points.shape == (3, 6, 8, 3)
    assert samples[1].frames is s.frames  # one clip per scene, shared
    assert s.meta["object_ids"] == [12] and np.isfinite(s.points).any()
