"""ScanNet posed-frame loader: exact on-disk formats, invalid poses, bad files, axis-alignment invariance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DEPTH_HW, K_COLOR, K_DEPTH, axis_alignment, make_frames
from loc3r.core.geometry import VisionSegment, anchor_frame, depth_to_world_points, pool_token_points
from loc3r.data.scannet import (
    ScanNetFrameSource,
    ScanNetScene,
    SceneMeta,
    SceneMetaTable,
    build_scene_meta,
    export_scannet_scene,
    mesh_bbox_center,
    points_on_color_grid,
    read_axis_alignment,
)
from loc3r.data.schema import SampleError
from loc3r.data.video import LoadReport, uniform_indices


def write_matrix(path: Path, m: np.ndarray) -> None:
    path.write_text("\n".join(" ".join(f"{v:f}" for v in row) for row in m) + "\n")


def write_sensreader_by_hand(scene: Path, colors, depths, poses, align: np.ndarray | None) -> None:
    """The SensReader layout written directly with Pillow / text (independent of our exporter)."""
    for sub in ("color", "depth", "pose", "intrinsic"):
        (scene / sub).mkdir(parents=True, exist_ok=True)
    k4c, k4d = np.eye(4), np.eye(4)
    k4c[:3, :3], k4d[:3, :3] = K_COLOR, K_DEPTH
    write_matrix(scene / "intrinsic" / "intrinsic_color.txt", k4c)
    write_matrix(scene / "intrinsic" / "intrinsic_depth.txt", k4d)
    write_matrix(scene / "intrinsic" / "extrinsic_color.txt", np.eye(4))
    write_matrix(scene / "intrinsic" / "extrinsic_depth.txt", np.eye(4))
    for i, (c, d, p) in enumerate(zip(colors, depths, poses, strict=True)):
        Image.fromarray(c).save(scene / "color" / f"{i}.jpg", quality=95)
        Image.fromarray(np.rint(d * 1000).astype(np.uint16)).save(scene / "depth" / f"{i}.png")
        write_matrix(scene / "pose" / f"{i}.txt", p)
    if align is not None:
        values = " ".join(f"{v:.9f}" for v in align.reshape(-1))
        (scene / f"{scene.name}.txt").write_text(f"colorHeight = 968\naxisAlignment = {values}\nnumDepthFrames = 9\n")


def test_sensreader_loader_returns_what_the_files_say(tmp_path: Path) -> None:
    colors, depths, poses = make_frames(7)
    align = axis_alignment()
    scene_dir = tmp_path / "scans" / "scene0001_00"
    write_sensreader_by_hand(scene_dir, colors, depths, poses, align)
    scene = ScanNetScene(scene_dir)
    assert scene.layout == "sensreader" and scene.axis_aligned
    np.testing.assert_allclose(scene.axis_alignment, align, atol=1e-8)
    np.testing.assert_allclose(scene.color_intrinsic, K_COLOR)
    np.testing.assert_allclose(scene.depth_intrinsic, K_DEPTH)

    clip = scene.load_clip(4, points_size=DEPTH_HW)
    expected_ids = np.arange(7)[uniform_indices(7, 4)]
    np.testing.assert_array_equal(clip.frame_ids, expected_ids)
    for t, fid in enumerate(clip.frame_ids):
        raw = np.round(poses[fid], 6)  # "%f" on disk keeps 6 decimals
        np.testing.assert_allclose(clip.poses[t], align @ raw, atol=1e-6)
        jpg = np.asarray(Image.open(scene_dir / "color" / f"{fid}.jpg").convert("RGB"))
        np.testing.assert_array_equal(clip.frames[t], jpg)
        # same camera at half resolution: the colour grid maps exactly onto depth pixels
        depth_m = np.rint(depths[fid] * 1000) / 1000
        expected = depth_to_world_points(depth_m, K_DEPTH, clip.poses[t])
        np.testing.assert_allclose(clip.points[t], expected, atol=1e-4, equal_nan=True)
    assert np.isnan(clip.points[:, 0, :3]).all()  # depth 0 -> invalid, never a target
    assert scene.report.counts["frames_valid"] == 7


def test_posed_images_layout_and_resizing(tmp_path: Path) -> None:
    colors, depths, poses = make_frames(12)
    scene_dir = export_scannet_scene(
        tmp_path / "posed_images" / "scene0002_00",
        colors,
        depths,
        poses,
        K_COLOR,
        K_DEPTH,
        layout="posed_images",
        frame_ids=range(0, 120, 10),
    )
    assert (scene_dir / "00010.jpg").is_file() and (scene_dir / "depth_intrinsic.txt").is_file()
    scene = ScanNetScene(scene_dir)
    assert scene.layout == "posed_images" and not scene.axis_aligned
    assert scene.report.skips["no_axis_alignment"] == 1
    clip = scene.load_clip(5, image_size=(24, 32), points_size=(12, 16))
    assert clip.frames.shape == (5, 24, 32, 3) and clip.points.shape == (5, 12, 16, 3)
    np.testing.assert_array_equal(clip.frame_ids, np.arange(0, 120, 10)[uniform_indices(12, 5)])
    np.testing.assert_allclose(clip.color_intrinsic, np.diag([0.5, 0.5, 1.0]) @ K_COLOR)
    # each point lies on its depth pixel's ray at the stored depth
    cam = (clip.points[0].reshape(-1, 3) - clip.poses[0][:3, 3]) @ clip.poses[0][:3, :3]
    valid = np.isfinite(cam).all(1)
    assert valid.mean() > 0.9
    assert np.all((cam[valid, 2] > 0.79) & (cam[valid, 2] < 4.01))


def test_points_use_depth_intrinsics_when_cameras_differ() -> None:
    depth = np.full((20, 30), 2.0)
    k_color = np.array([[100.0, 0, 40.0], [0, 100.0, 30.0], [0, 0, 1]])  # 80x60 colour image
    k_depth = np.array([[40.0, 0, 15.0], [0, 40.0, 10.0], [0, 0, 1]])  # narrower-FOV depth camera
    pts = points_on_color_grid(depth, k_depth, k_color, (60, 80), (6, 8), np.eye(4))
    valid = np.isfinite(pts).all(-1)
    # colour rays outside the depth camera's field of view have no depth
    assert valid.any() and not valid.all()
    np.testing.assert_allclose(pts[valid][:, 2], 2.0)
    # a valid point projects, with the colour intrinsics, into its own grid cell (shared optical centre)
    rows, cols = np.nonzero(valid)
    u = k_color[0, 0] * pts[valid][:, 0] / pts[valid][:, 2] + k_color[0, 2]
    v = k_color[1, 1] * pts[valid][:, 1] / pts[valid][:, 2] + k_color[1, 2]
    assert np.all(np.abs(u / 10.0 - (cols + 0.5)) <= 0.5 + 1e-6)
    assert np.all(np.abs(v / 10.0 - (rows + 0.5)) <= 0.5 + 1e-6)


def test_invalid_poses_are_skipped_and_counted(tmp_path: Path) -> None:
    colors, depths, poses = make_frames(10)
    poses[2] = np.full((4, 4), -np.inf)
    poses[5] = poses[5].copy()
    poses[5][0, 0] = np.nan
    poses[9] = np.full((4, 4), -np.inf)
    scene_dir = export_scannet_scene(tmp_path / "scene0003_00", colors, depths, poses, K_COLOR, K_DEPTH)
    assert "-inf" in (scene_dir / "pose" / "2.txt").read_text()
    scene = ScanNetScene(scene_dir)
    valid = scene.valid_frame_ids()
    np.testing.assert_array_equal(valid, [0, 1, 3, 4, 6, 7, 8])
    assert scene.report.skips["invalid_pose"] == 3
    assert scene.report.ok  # invalid poses are expected in ScanNet, not errors
    clip = scene.load_clip(4, points_size=None)
    assert set(clip.frame_ids.tolist()) <= set(valid.tolist())
    np.testing.assert_array_equal(clip.frame_ids, valid[uniform_indices(7, 4)])
    assert clip.points is None


def test_pose_file_with_three_rows_is_reported(tmp_path: Path) -> None:
    colors, depths, poses = make_frames(6)
    scene_dir = export_scannet_scene(tmp_path / "scene0004_00", colors, depths, poses, K_COLOR, K_DEPTH)
    bad = scene_dir / "pose" / "3.txt"
    bad.write_text("\n".join(bad.read_text().splitlines()[:3]) + "\n")
    scene = ScanNetScene(scene_dir)
    np.testing.assert_array_equal(scene.valid_frame_ids(), [0, 1, 2, 4, 5])
    (entry,) = scene.report.errors
    assert entry.kind == "bad_pose_file" and entry.field == "pose" and entry.file == str(bad)
    assert "3 rows" in entry.message and "frame 3" in entry.record
    with pytest.raises(SampleError, match=r"3\.txt.*3 rows"):
        ScanNetScene(scene_dir, report=LoadReport(strict=True)).valid_frame_ids()


def test_truncated_png_is_reported_and_replaced(tmp_path: Path) -> None:
    colors, depths, poses = make_frames(8)
    scene_dir = export_scannet_scene(tmp_path / "scene0005_00", colors, depths, poses, K_COLOR, K_DEPTH)
    png = scene_dir / "depth" / "0.png"
    png.write_bytes(png.read_bytes()[:60])
    scene = ScanNetScene(scene_dir)
    clip = scene.load_clip(3, points_size=(6, 8))
    assert 0 not in clip.frame_ids.tolist() and len(clip.frame_ids) == 3
    (entry,) = scene.report.errors
    assert entry.kind == "unreadable_image" and entry.file == str(png) and entry.field == "depth"
    with pytest.raises(SampleError, match=r"0\.png"):
        ScanNetScene(scene_dir, report=LoadReport(strict=True)).load_clip(3, points_size=(6, 8))


def test_missing_scene_folder_is_reported_and_loading_continues(tmp_path: Path) -> None:
    colors, depths, poses = make_frames(4)
    export_scannet_scene(tmp_path / "scene0006_00", colors, depths, poses, K_COLOR, K_DEPTH)
    source = ScanNetFrameSource(tmp_path, num_frames=2, points_size=None)
    with pytest.raises(SampleError, match="scene0099_00"):
        source.clip("scene0099_00")
    assert source.clip("scene0006_00").frames.shape[0] == 2
    (entry,) = source.report.errors
    assert entry.kind == "missing_scene" and entry.record == "scene0099_00"
    strict = ScanNetFrameSource(tmp_path, num_frames=2, strict=True)
    with pytest.raises(SampleError, match="scene0099_00"):
        strict.clip("scene0099_00")


def test_axis_alignment_gives_the_same_anchor_frame_targets(tmp_path: Path) -> None:
    colors, depths, poses = make_frames(6, seed=3)
    align = axis_alignment(theta=-1.1, t=(0.4, 3.0, -0.05))
    scene_dir = export_scannet_scene(
        tmp_path / "scene0007_00", colors, depths, poses, K_COLOR, K_DEPTH, axis_alignment=align
    )
    aligned = ScanNetScene(scene_dir).load_clip(4, points_size=(12, 16))
    raw = ScanNetScene(scene_dir, axis_alignment=None).load_clip(4, points_size=(12, 16))
    assert aligned.axis_aligned and not raw.axis_aligned
    assert not np.allclose(aligned.poses, raw.poses)
    segments = [VisionSegment((t,), 3, 4) for t in range(4)]
    targets = []
    for clip in (aligned, raw):
        frame = anchor_frame(clip.poses[0])
        tokens, valid = pool_token_points(frame.points_to_bev(clip.points), segments)
        targets.append((tokens, valid, frame.poses_to_bev(clip.poses)))
    np.testing.assert_array_equal(targets[0][1], targets[1][1])
    assert targets[0][1].any()
    # BEV (x, y) targets and camera headings are identical; only heights move by A's z translation
    np.testing.assert_allclose(targets[0][0][:, :2], targets[1][0][:, :2], atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(targets[0][2][:, :3, :3], targets[1][2][:, :3, :3], atol=1e-6)
    np.testing.assert_allclose(targets[0][2][:, :2, 3], targets[1][2][:, :2, 3], atol=1e-6)
    dz = targets[0][0][:, 2] - targets[1][0][:, 2]
    np.testing.assert_allclose(dz[np.isfinite(dz)], align[2, 3], atol=1e-4)


def test_scene_meta_json_and_builder(tmp_path: Path) -> None:
    import trimesh

    scans = tmp_path / "scans"
    scene = scans / "scene0010_00"
    scene.mkdir(parents=True)
    align = axis_alignment()
    values = " ".join(f"{v:.9f}" for v in align.reshape(-1))
    (scene / "scene0010_00.txt").write_text(f"axisAlignment = {values}\nsceneType = Office\n")
    box = trimesh.creation.box(extents=(4.0, 3.0, 2.5))
    box.apply_translation([1.0, -2.0, 1.25])
    box.export(scene / "scene0010_00_vh_clean_2.ply")
    np.testing.assert_allclose(mesh_bbox_center(scene / "scene0010_00_vh_clean_2.ply"), [1.0, -2.0, 1.25], atol=1e-6)
    np.testing.assert_allclose(read_axis_alignment(scene / "scene0010_00.txt"), align, atol=1e-8)

    report = LoadReport()
    table = build_scene_meta(scans, ["scene0010_00", "scene0404_00"], report=report)
    assert [e.kind for e in report.errors] == ["missing_scene"]
    path = tmp_path / "scene_meta.json"
    table.to_json(path)
    loaded = SceneMetaTable.from_json(path)
    meta = loaded.get("scene0010_00")
    np.testing.assert_allclose(meta.axis_alignment, align, atol=1e-8)
    np.testing.assert_allclose(meta.mesh_bbox_center, [1.0, -2.0, 1.25], atol=1e-6)
    # lazily completed from scans_root when the JSON lacks a field
    lazy = SceneMetaTable({"scene0010_00": SceneMeta("scene0010_00")}, scans_root=scans)
    np.testing.assert_allclose(lazy.get("scene0010_00").mesh_bbox_center, [1.0, -2.0, 1.25], atol=1e-6)
    path.write_text('{"format": "loc3r.scene_meta.v1", "scenes": {"s": {"mesh_bbox_center": [1, 2]}}}')
    with pytest.raises(SampleError, match="mesh_bbox_center"):
        SceneMetaTable.from_json(path)


def test_bad_axis_alignment_is_rejected(tmp_path: Path) -> None:
    meta = tmp_path / "scene.txt"
    meta.write_text("axisAlignment = 1 0 0 0 0 1 0 0 0 0 1 0\n")
    with pytest.raises(SampleError, match="axisAlignment.*16"):
        read_axis_alignment(meta)
    meta.write_text("axisAlignment = 2 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1\n")
    with pytest.raises(SampleError, match="axisAlignment"):
        read_axis_alignment(meta)
    meta.write_text("sceneType = Kitchen\n")
    assert read_axis_alignment(meta) is None
