"""MSQA loader: both file shapes, SceneVerse-frame conversion on hand-made records, ClipSamples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import K_COLOR, K_DEPTH, axis_alignment, make_frames
from loc3r.benchmarks.msqa.reader import MSQADataset, load_msqa, msqa_to_world, strip_image_placeholders
from loc3r.core.geometry import anchor_frame, wrap_angle
from loc3r.data.scannet import ScanNetFrameSource, SceneMeta, SceneMetaTable, export_scannet_scene
from loc3r.data.schema import SampleError

QA = {
    "Q": "What is the color of the <office chair-2-IMG> in front of me?",
    "A": ["gray"],
    "query_type": "qa_4_directions",
    "type": "attribute-color",
    "situation": "To my left there's a gray fabric office chair. Far in front, there's a gray plastic bin.",
    "location": [0.5, -1.0, 0.026],
    "orientation": [0.6343910511301244, 0.7730122859605894, 0],
    "mode": "txt",
}


def test_conversion_by_hand() -> None:
    position, yaw = msqa_to_world([1.0, 2.0, 0.0], [0.0, -2.0, 0.0])
    np.testing.assert_allclose(position, [1.0, 2.0, 0.0])
    assert math.isclose(yaw, -math.pi / 2)
    position, yaw = msqa_to_world([1.0, 2.0, 0.0], [-1.0, 0.0, 0.0], offset=[0.5, 0.5, 0.0])
    np.testing.assert_allclose(position, [1.5, 2.5, 0.0])
    assert math.isclose(abs(yaw), math.pi)  # facing -x, wrapped to [-pi, pi)
    with pytest.raises(SampleError, match="orientation"):
        msqa_to_world([0, 0, 0], [0, 0, 1])
    assert strip_image_placeholders("the <office chair-2-IMG> and <bin-11-IMG>") == "the office chair and bin"


def test_both_file_shapes_and_bad_records(tmp_path: Path) -> None:
    released = {"scene0000_00": {"response": [QA, dict(QA, orientation=[0, 0, 0])]}}
    (tmp_path / "MSQA_scannet_test_v1.json").write_text(json.dumps(released))
    records, report = load_msqa(tmp_path / "MSQA_scannet_test_v1.json")
    assert len(records) == 1
    r = records[0]
    assert r.scene_id == "scene0000_00" and r.question == "What is the color of the office chair in front of me?"
    assert r.answers == ["gray"] and r.type == "attribute-color" and r.mode == "txt"
    np.testing.assert_allclose(r.position_aligned, QA["location"])
    assert math.isclose(r.yaw_aligned, math.atan2(0.7730122859605894, 0.6343910511301244))
    (entry,) = report.errors
    assert entry.record == "scene0000_00/response[1]" and entry.field == "orientation"

    listed = [
        {"scan_id": "scene0001_00", "question": "Where is the bed?", "answers": ["behind you"], "index": 17,
         "situation": "I sit on the sofa.", "location": [0, 0, 0], "orientation": [1, 0, 0], "type": "spatial"},
        {"question": "No scene?", "answers": ["x"], "situation": "s", "location": [0, 0, 0], "orientation": [1, 0, 0]},
    ]  # fmt: skip
    (tmp_path / "msqa_scannet_train.json").write_text(json.dumps(listed))
    table = SceneMetaTable({"scene0001_00": SceneMeta("scene0001_00", sceneverse_offset=np.array([0.2, -0.1, 0.0]))})
    records, report = load_msqa(tmp_path / "msqa_scannet_train.json", scene_meta=table)
    assert [r.sample_id for r in records] == ["msqa-scene0001_00-17"]
    np.testing.assert_allclose(records[0].position_aligned, [0.2, -0.1, 0.0])
    assert [(e.record, e.field) for e in report.errors] == [("[1]", "scan_id")]
    with pytest.raises(SampleError, match="scan_id"):
        load_msqa(tmp_path / "msqa_scannet_train.json", strict=True)


def test_clip_samples_follow_the_aligned_frame(tmp_path: Path) -> None:
    align = axis_alignment(0.9, (0.5, -0.3, 0.0))
    colors, depths, poses = make_frames(5)
    export_scannet_scene(
        tmp_path / "frames" / "scene0000_00", colors, depths, poses, K_COLOR, K_DEPTH, axis_alignment=align
    )
    (tmp_path / "msqa.json").write_text(json.dumps({"scene0000_00": {"response": [QA]}}))
    records, _ = load_msqa(tmp_path / "msqa.json")
    source = ScanNetFrameSource(tmp_path / "frames", num_frames=3, points_size=None)
    (sample,) = list(MSQADataset(records, source).samples())
    assert sample.task == "msqa" and sample.answer == "gray" and sample.situation_text == records[0].situation
    np.testing.assert_allclose(sample.agent_position, QA["location"])
    # in the clip's anchor frame the agent sits where the raw-frame geometry says it does
    raw_agent = np.linalg.inv(align) @ np.array([*QA["location"], 1.0])
    frame = anchor_frame(sample.poses[0])
    raw_first = np.linalg.inv(align) @ sample.poses[0]
    raw_frame = anchor_frame(raw_first)
    np.testing.assert_allclose(
        frame.points_to_bev(sample.agent_position)[:2], raw_frame.points_to_bev(raw_agent[:3])[:2]
    )
    raw_yaw = math.atan2(*(np.linalg.inv(align[:3, :3]) @ np.array([*QA["orientation"]]))[[1, 0]])
    assert abs(wrap_angle(frame.yaw_to_bev(sample.agent_yaw) - raw_frame.yaw_to_bev(raw_yaw))) < 1e-9
    # without the axis alignment the MSQA pose cannot be placed: no target rather than a wrong one
    raw_source = ScanNetFrameSource(tmp_path / "frames", num_frames=3, points_size=None, use_axis_alignment=False)
    (unplaced,) = list(MSQADataset(records, raw_source).samples())
    assert unplaced.agent_position is None and unplaced.agent_yaw is None
    assert raw_source.report.skips["msqa_pose_without_axis_alignment"] == 1
