"""One frame-validation path (issue 11 part 1): frames of another size than the scene's (colour, depth) and
intrinsics that fit no frame are skipped or refused, named (file, record, field); skipped frames reach the command
that consumes the samples (FrameLog, --strict)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loc3r.data.scannet import ScanNetScene, export_scannet_scene
from loc3r.data.schema import SampleError
from loc3r.data.video import FrameLog, LoadReport

K_COLOR = np.array([[60.0, 0.0, 32.0], [0.0, 60.0, 24.0], [0.0, 0.0, 1.0]])  # 64x48 colour
K_DEPTH = np.array([[30.0, 0.0, 16.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])  # 32x24 depth, same camera


def _pose(i: int) -> np.ndarray:
    yaw = 0.3 * i
    forward = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, np.cross(forward, right), forward
    pose[:3, 3] = [1.0, 2.0, 1.4]
    return pose


def _scene(root: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    colors = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)]
    depths = [np.full((24, 32), 2.0) for _ in range(n)]
    return export_scannet_scene(root / "scene0000_00", colors, depths, [_pose(i) for i in range(n)], K_COLOR, K_DEPTH)


@pytest.mark.parametrize("field", ["color", "depth"])
def test_frame_of_another_size_is_skipped_and_named(tmp_path: Path, field: str) -> None:
    scene_dir = _scene(tmp_path)
    if field == "color":  # a frame of another size, without --image-size: used to abort with a traceback
        Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(scene_dir / "color" / "3.jpg")
    else:  # a half-size depth map: used to be unprojected with the full-size intrinsics (points 1.6 m off)
        Image.fromarray(np.full((12, 16), 2000, np.uint16)).save(scene_dir / "depth" / "3.png")
    report = LoadReport("t")
    clip = ScanNetScene(scene_dir, report=report).load_clip(6, points_size=(24, 32))
    assert 3 not in clip.frame_ids.tolist()
    (problem,) = clip.meta["frame_problems"]
    assert (
        problem["kind"] == "frame_size"
        and problem["field"] == field
        and problem["file"].endswith(f"3.{'jpg' if field == 'color' else 'png'}")
    )
    assert problem["record"] == "scene0000_00 frame 3" and report.errors_of("frame_size")
    # every frame left has correct targets: depth 2 m straight ahead of each camera
    centre = clip.points[:, 12, 16]
    expected = np.stack([p[:3, 3] + 2.0 * p[:3, 2] for p in clip.poses])
    np.testing.assert_allclose(centre[:, :2], expected[:, :2], atol=0.1)
    with pytest.raises(SampleError, match=r"3\.(jpg|png)"):
        ScanNetScene(scene_dir, report=LoadReport("t", strict=True)).load_clip(6, points_size=(24, 32))


def test_intrinsics_that_fit_no_frame_are_an_error(tmp_path: Path) -> None:
    scene_dir = _scene(tmp_path)
    k = np.eye(4)
    k[:3, :3] = [[30.0, 0.0, 300.0], [0.0, 30.0, 200.0], [0.0, 0.0, 1.0]]  # principal point outside 32x24
    np.savetxt(scene_dir / "intrinsic" / "intrinsic_depth.txt", k)
    with pytest.raises(SampleError, match="intrinsic_depth"):
        ScanNetScene(scene_dir).load_clip(4, points_size=(24, 32))


def test_skipped_frames_reach_the_consumer(tmp_path: Path) -> None:
    from loc3r.data.video import frame_problems_meta

    scene_dir = _scene(tmp_path)
    (scene_dir / "color" / "2.jpg").write_bytes((scene_dir / "color" / "2.jpg").read_bytes()[:50])  # truncated
    (scene_dir / "pose" / "4.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n")  # 3 rows
    clip = ScanNetScene(scene_dir).load_clip(6, points_size=None)
    log = FrameLog("loc3r eval")
    for k in range(3):  # three samples of the same clip: each problem counted once, with its sample count
        log.add(frame_problems_meta(clip.meta), f"s{k}")
    log.add({}, "clean")
    fields = sorted((p["field"], Path(p["file"]).name, p["samples"]) for p in log.problems)
    assert fields == [("color", "2.jpg", 3), ("pose", "4.txt", 3)]
    assert log.to_dict()["samples"] == 4 and log.to_dict()["samples_with_skipped_frames"] == 3
    assert "2.jpg" in log.summary() and "4.txt" in log.summary()
    written = json.loads(log.write(tmp_path / "run").read_text())
    assert written["frames_skipped"] == 2
    with pytest.raises(SampleError, match=r"--strict.*2\.jpg|--strict.*4\.txt"):
        FrameLog("loc3r train", strict=True).add(frame_problems_meta(clip.meta), "s0")


def test_truncated_frames_fail_even_when_another_library_allows_truncated_images(tmp_path: Path) -> None:
    """lmms-eval sets Pillow's LOAD_TRUNCATED_IMAGES globally on import; our decoders must still refuse."""
    import numpy as np
    from PIL import Image, ImageFile

    from loc3r.data.schema import SampleError
    from loc3r.data.video import read_depth_png, read_rgb

    rgb, depth = tmp_path / "0.png", tmp_path / "0_depth.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(rgb)
    Image.fromarray(np.random.default_rng(1).integers(0, 5000, (48, 64), dtype=np.uint16)).save(depth)
    for path in (rgb, depth):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(SampleError, match="0.png"):
            read_rgb(rgb)
        with pytest.raises(SampleError, match="0_depth.png"):
            read_depth_png(depth)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
