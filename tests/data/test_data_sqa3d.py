"""SQA3D loader: join on the real records, pose conventions, round trip, bad input, anchor-frame invariance."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import K_COLOR, K_DEPTH, SQA3D_CENTRES, SQA3D_FIXTURES, axis_alignment, make_frames, sqa3d_meta_table
from loc3r.benchmarks.sqa3d.reader import (
    SQA3DDataset,
    bev_to_sqa3d,
    load_sqa3d,
    load_sqa3d_localization,
    quaternion_xyzw_to_matrix,
    sqa3d_to_bev,
    sqa3d_to_world,
    world_to_sqa3d,
    yaw_quaternion_xyzw,
)
from loc3r.core.geometry import anchor_frame, wrap_angle
from loc3r.data.scannet import ScanNetFrameSource, SceneMeta, SceneMetaTable, export_scannet_scene
from loc3r.data.schema import SampleError

FIXTURES = SQA3D_FIXTURES
CENTRES = SQA3D_CENTRES
meta_table = sqa3d_meta_table
QFILE = "v1_balanced_questions_test_scannetv2.json"
AFILE = "v1_balanced_sqa_annotations_test_scannetv2.json"


def angle_diff(a: float, b: float) -> float:
    return abs(float(wrap_angle(a - b)))


def test_real_records_join_and_convert() -> None:
    records, report = load_sqa3d(FIXTURES, "test", scene_meta=meta_table())
    assert report.ok and len(records) == 124 and report.counts["records_with_pose"] == 124
    by_id = {r.question_id: r for r in records}
    r = by_id[220602000129]
    assert r.scene_id == "scene0015_00" and r.answers == ["three"]
    assert r.question == "How many chairsare immediately to the left?"
    assert r.situation.startswith("I am sitting on a chair facing a table")
    assert len(r.alternative_situations) == 2
    # by hand: quaternion (0, 0, 0.30333, 0.95289) is a yaw psi about z; SQA3D's agent faces local -x
    psi = 2 * math.atan2(0.30332994220436255, 0.9528855892300468)
    a = axis_alignment(0.4, (0.3, -1.0, 0.05))
    p_raw = np.array([0.8455521649072681, 2.988858120438058, 0.0]) + CENTRES["scene0015_00"]
    expected_position = a[:3, :3] @ p_raw + a[:3, 3]
    position, yaw = r.agent_world(a)
    np.testing.assert_allclose(position, expected_position, atol=1e-12)
    assert angle_diff(yaw, psi + math.pi + 0.4) < 1e-9
    # scene0025_00 has no axis alignment: world = raw frame
    r2 = by_id[220602000261]
    position2, yaw2 = r2.agent_world(None)
    expected2 = np.array([-0.3117474325407157, 1.8800423010258172, 0]) + CENTRES["scene0025_00"]
    np.testing.assert_allclose(position2, expected2)
    assert angle_diff(yaw2, 2 * math.atan2(0.4048499206165972, 0.9143831482353157) + math.pi) < 1e-9


def test_released_records_are_what_the_convention_assumes() -> None:
    """Data check behind the module docstring: z = 0, pure-yaw unit quaternions, one pose per situation."""
    records, _ = load_sqa3d(FIXTURES, "test", scene_meta=meta_table())
    poses: dict[tuple[str, str], set[tuple[float, ...]]] = {}
    for r in records:
        assert r.position[2] == 0.0
        assert r.rotation[0] == 0.0 and r.rotation[1] == 0.0
        assert abs(np.linalg.norm(r.rotation) - 1.0) < 1e-9
        poses.setdefault((r.scene_id, r.situation), set()).add(tuple(r.position) + tuple(r.rotation))
    assert all(len(v) == 1 for v in poses.values())


def test_round_trip_of_all_real_records() -> None:
    table = meta_table()
    records, _ = load_sqa3d(FIXTURES, "test", scene_meta=table)
    for r in records:
        meta = table.get(r.scene_id)
        position, yaw = sqa3d_to_world(
            r.position, r.rotation, axis_alignment=meta.axis_alignment, mesh_bbox_center=meta.mesh_bbox_center
        )
        pos_dict, rot_dict = world_to_sqa3d(
            position, yaw, axis_alignment=meta.axis_alignment, mesh_bbox_center=meta.mesh_bbox_center
        )
        np.testing.assert_allclose([pos_dict["x"], pos_dict["y"], pos_dict["z"]], r.position, atol=1e-9)
        back = np.array([rot_dict["_x"], rot_dict["_y"], rot_dict["_z"], rot_dict["_w"]])
        assert min(np.abs(back - r.rotation).max(), np.abs(back + r.rotation).max()) < 1e-9  # q ~ -q


@settings(max_examples=60, deadline=None)
@given(
    x=st.floats(-8, 8),
    y=st.floats(-8, 8),
    psi=st.floats(-4 * math.pi, 4 * math.pi),
    theta=st.floats(-math.pi, math.pi),
    tx=st.floats(-5, 5),
    ty=st.floats(-5, 5),
    cx=st.floats(-3, 3),
    cy=st.floats(-3, 3),
    convention=st.sampled_from(["sqa3d", "loc3r_world"]),
)
def test_round_trip_property(x, y, psi, theta, tx, ty, cx, cy, convention) -> None:
    align = axis_alignment(theta, (tx, ty, 0.02))
    centre = np.array([cx, cy, 1.3]) if convention == "sqa3d" else None
    q = yaw_quaternion_xyzw(psi)
    position, yaw = sqa3d_to_world([x, y, 0.0], q, axis_alignment=align, mesh_bbox_center=centre, convention=convention)
    pos_dict, rot_dict = world_to_sqa3d(
        position, yaw, axis_alignment=align, mesh_bbox_center=centre, convention=convention
    )
    np.testing.assert_allclose([pos_dict["x"], pos_dict["y"], pos_dict["z"]], [x, y, 0.0], atol=1e-9)
    back = quaternion_xyzw_to_matrix([rot_dict[k] for k in ("_x", "_y", "_z", "_w")])
    np.testing.assert_allclose(back, quaternion_xyzw_to_matrix(q), atol=1e-9)
    # a 2-D (BEV) prediction comes back at SQA3D z = 0 too
    pos2d, _ = world_to_sqa3d(position[:2], yaw, axis_alignment=align, mesh_bbox_center=centre, convention=convention)
    assert abs(pos2d["z"]) < 1e-9


def test_facing_directions_of_the_two_conventions() -> None:
    identity = [0.0, 0.0, 0.0, 1.0]
    _, yaw_sqa = sqa3d_to_world([0, 0, 0], identity, mesh_bbox_center=[0, 0, 0], convention="sqa3d")
    _, yaw_ours = sqa3d_to_world([0, 0, 0], identity, convention="loc3r_world")
    assert angle_diff(yaw_sqa, math.pi) < 1e-12  # identity faces -x in SQA3D
    assert angle_diff(yaw_ours, 0.0) < 1e-12  # ... and +x in SynthRooms' files
    # SynthRooms: rotation about +z by the world yaw, position already in the world frame
    position, yaw = sqa3d_to_world({"x": 1.0, "y": 2.0, "z": 0}, yaw_quaternion_xyzw(0.7), convention="loc3r_world")
    np.testing.assert_allclose(position, [1.0, 2.0, 0.0])
    assert angle_diff(yaw, 0.7) < 1e-12
    with pytest.raises(SampleError, match="mesh_bbox_center"):
        sqa3d_to_world([0, 0, 0], identity, convention="sqa3d")
    with pytest.raises(SampleError, match="rotation"):
        sqa3d_to_world([0, 0, 0], [0, 0, 0, 0], convention="loc3r_world")


def copy_fixture(tmp_path: Path) -> tuple[dict, dict]:
    for name in (QFILE, AFILE):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return json.loads((tmp_path / QFILE).read_text()), json.loads((tmp_path / AFILE).read_text())


def test_annotation_without_question_is_reported(tmp_path: Path) -> None:
    questions, annotations = copy_fixture(tmp_path)
    orphan = copy.deepcopy(annotations["annotations"][0])
    orphan["question_id"] = 999
    annotations["annotations"].append(orphan)
    broken = annotations["annotations"][5]
    broken["rotation"] = {"_x": 0, "_y": 0, "_z": 0}  # no _w
    (tmp_path / AFILE).write_text(json.dumps(annotations))
    records, report = load_sqa3d(tmp_path, "test", scene_meta=meta_table())
    assert len(records) == 123
    kinds = {e.kind: e for e in report.errors}
    assert set(kinds) == {"orphan_annotation", "bad_record"}
    entry = kinds["orphan_annotation"]
    assert entry.record == "question_id=999" and entry.field == "question_id" and entry.file.endswith(AFILE)
    assert kinds["bad_record"].field == "rotation" and "_w" in kinds["bad_record"].message
    del annotations["annotations"][7]  # a question without annotation is reported too
    (tmp_path / AFILE).write_text(json.dumps(annotations))
    records, report = load_sqa3d(tmp_path, "test", scene_meta=meta_table())
    assert len(records) == 122 and "missing_annotation" in {e.kind for e in report.errors}
    with pytest.raises(SampleError, match=r"record question_id=\d+, field .rotation."):  # first error stops
        load_sqa3d(tmp_path, "test", scene_meta=meta_table(), strict=True)


def test_missing_scene_meta_keeps_records_without_pose(tmp_path: Path) -> None:
    records, report = load_sqa3d(FIXTURES, "test", scans_root=tmp_path / "scans")
    assert len(records) == 124 and all(r.position_raw is None for r in records)
    errors = report.errors_of("missing_scene_meta")
    assert {e.message.split(":")[0] for e in errors} == {"scene scene0015_00", "scene scene0025_00"}
    assert all(e.field == "position" and "scene0015_00_vh_clean_2.ply" in errors[0].message for e in errors[:1])
    # the mesh is used when it is there
    import trimesh

    mesh_dir = tmp_path / "scans" / "scene0015_00"
    mesh_dir.mkdir(parents=True)
    box = trimesh.creation.box(extents=(4.0, 6.0, 2.4))
    box.apply_translation(CENTRES["scene0015_00"])
    box.export(mesh_dir / "scene0015_00_vh_clean_2.ply")
    records, report = load_sqa3d(FIXTURES, "test", scans_root=tmp_path / "scans")
    with_pose = [r for r in records if r.position_raw is not None]
    assert {r.scene_id for r in with_pose} == {"scene0015_00"}
    np.testing.assert_allclose(with_pose[0].mesh_bbox_center, CENTRES["scene0015_00"], atol=1e-6)


def test_localization_files_both_shapes(tmp_path: Path) -> None:
    situations = {"situations": [{"scene_id": "scene0015_00", "situation": "I face the door.", "situation_id": 7}]}
    pose = {"position": {"x": 0.5, "y": -0.25, "z": 0}, "rotation": {"_x": 0, "_y": 0, "_z": 0.0, "_w": 1.0}}
    annotations = {"annotations": [{"scene_id": "scene0015_00", "situation_id": 7, **pose}, {"situation_id": 8}]}
    (tmp_path / "v1_situations_test_scannetv2.json").write_text(json.dumps(situations))
    (tmp_path / "v1_localization_annotations_test_scannetv2.json").write_text(json.dumps(annotations))
    records, report = load_sqa3d_localization(tmp_path, "test", scene_meta=meta_table())
    assert [r.situation_id for r in records] == [7] and [e.kind for e in report.errors] == ["orphan_annotation"]
    single = tmp_path / "single"
    single.mkdir()
    one = {"annotations": [{"scene_id": "scene0025_00", "situation": "s", "alternative_situation": ["t"], **pose}]}
    (single / "v1_balanced_localization_test_scannetv2.json").write_text(json.dumps(one))
    records, report = load_sqa3d_localization(single, "test", scene_meta=meta_table())
    assert report.ok and records[0].alternative_situations == ["t"]
    position, yaw = records[0].agent_world(None)
    np.testing.assert_allclose(position, [-0.5, 3.75, 1.4])
    assert angle_diff(yaw, math.pi) < 1e-12


def write_sqa3d_scene(tmp_path: Path, align: np.ndarray) -> tuple[Path, Path, SceneMetaTable]:
    """A ScanNet-format scene with an axis alignment and one SQA3D question about it."""
    colors, depths, poses = make_frames(6, seed=5)
    frames_root = tmp_path / "frames"
    export_scannet_scene(frames_root / "scene0015_00", colors, depths, poses, K_COLOR, K_DEPTH, axis_alignment=align)
    questions, annotations = copy_fixture(tmp_path)
    questions["questions"] = [q for q in questions["questions"] if q["question_id"] == 220602000129]
    annotations["annotations"] = [a for a in annotations["annotations"] if a["question_id"] == 220602000129]
    (tmp_path / QFILE).write_text(json.dumps(questions))
    (tmp_path / AFILE).write_text(json.dumps(annotations))
    table = SceneMetaTable({"scene0015_00": SceneMeta("scene0015_00", None, np.array([2.0, 1.0, 1.3]))})
    return tmp_path, frames_root, table


def test_clip_samples_and_anchor_frame_invariance(tmp_path: Path) -> None:
    align = axis_alignment(1.2, (-0.7, 2.2, 0.0))
    sqa_root, frames_root, table = write_sqa3d_scene(tmp_path, align)
    records, report = load_sqa3d(sqa_root, "test", scene_meta=table)
    assert report.ok and len(records) == 1
    bev = []
    for use_alignment in (True, False):
        source = ScanNetFrameSource(frames_root, num_frames=3, points_size=(6, 8), use_axis_alignment=use_alignment)
        (sample,) = list(SQA3DDataset(records, source).samples())
        assert sample.task == "sqa3d" and sample.sample_id == "sqa3d-220602000129"
        assert sample.answer == "three" and sample.situation_text == records[0].situation
        assert sample.frames.shape == (3, 48, 64, 3) and sample.points.shape == (3, 6, 8, 3)
        assert sample.meta["axis_aligned"] is use_alignment
        frame = anchor_frame(sample.poses[0])
        bev.append((frame.points_to_bev(sample.agent_position)[:2], frame.yaw_to_bev(sample.agent_yaw)))
    np.testing.assert_allclose(bev[0][0], bev[1][0], atol=1e-9)
    assert angle_diff(bev[0][1], bev[1][1]) < 1e-9
    # the BEV helpers agree, and a BEV prediction goes back to the file's pose
    meta_a = np.asarray(sample.meta["axis_alignment"]).reshape(4, 4)
    xy, yaw = sqa3d_to_bev(
        records[0].position,
        records[0].rotation,
        sample.poses[0],
        axis_alignment=meta_a,
        mesh_bbox_center=[2.0, 1.0, 1.3],
    )
    np.testing.assert_allclose(xy, bev[1][0], atol=1e-9)
    pos, rot = bev_to_sqa3d(xy, yaw, sample.poses[0], axis_alignment=meta_a, mesh_bbox_center=[2.0, 1.0, 1.3])
    np.testing.assert_allclose([pos["x"], pos["y"], pos["z"]], records[0].position, atol=1e-9)
    back = np.array([rot["_x"], rot["_y"], rot["_z"], rot["_w"]])
    assert min(np.abs(back - records[0].rotation).max(), np.abs(back + records[0].rotation).max()) < 1e-9
    # predictions go back to SQA3D's convention with the clip's own alignment
    pos, _ = world_to_sqa3d(
        sample.agent_position, sample.agent_yaw, axis_alignment=np.eye(4), mesh_bbox_center=[2.0, 1.0, 1.3]
    )
    np.testing.assert_allclose([pos["x"], pos["y"]], records[0].position[:2], atol=1e-9)


def test_sample_ids_and_task_follow_the_source(tmp_path: Path) -> None:
    """SynthRooms data read through the SQA3D loader is named after its own task, not ``sqa3d-``."""
    sqa_root, frames_root, table = write_sqa3d_scene(tmp_path, axis_alignment())
    records, _ = load_sqa3d(sqa_root, "test", scene_meta=table)
    source = ScanNetFrameSource(frames_root, num_frames=2, points_size=None)
    (synth,) = list(SQA3DDataset(records, source, task="synth_situated").samples())
    assert synth.task == "synth_situated" and synth.sample_id == "synth_situated-220602000129"
    (custom,) = list(SQA3DDataset(records, source, task="synth_situated", id_prefix="rooms").samples())
    assert custom.task == "synth_situated" and custom.sample_id == "rooms-220602000129"
    (default,) = list(SQA3DDataset(records, source).samples())
    assert default.task == "sqa3d" and default.sample_id == "sqa3d-220602000129"


def test_missing_scene_skips_samples_but_not_the_rest(tmp_path: Path) -> None:
    sqa_root, frames_root, table = write_sqa3d_scene(tmp_path, axis_alignment())
    records, _ = load_sqa3d(sqa_root, "test", scene_meta=table)
    records = records + [copy.copy(records[0])]
    records[1].scene_id = "scene0404_00"
    source = ScanNetFrameSource(frames_root, num_frames=2, points_size=None)
    samples = list(SQA3DDataset(records, source).samples())
    assert [s.scene_id for s in samples] == ["scene0015_00"]
    assert source.report.errors[0].kind == "missing_scene" and source.report.skips["sample_without_frames"] == 1
