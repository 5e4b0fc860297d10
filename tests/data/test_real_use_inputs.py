"""Issue 22 (odd inputs): a frame whose colour JPEG is missing (its pose and depth are there) is skipped and named
(file, record, field 'color'), not silently absent; text that is not UTF-8 (a question typed on a Latin-1 terminal)
is a one-line error naming the field, not a tokenizer traceback."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from loc3r.data.scannet import ScanNetScene, export_scannet_scene
from loc3r.data.schema import ClipSample, SampleError
from loc3r.data.video import LoadReport

K_COLOR = np.array([[60.0, 0.0, 32.0], [0.0, 60.0, 24.0], [0.0, 0.0, 1.0]])
K_DEPTH = np.array([[30.0, 0.0, 16.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])


def _scene(root: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    poses = []
    for i in range(n):
        yaw = 0.3 * i
        forward = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        right = np.cross(forward, [0.0, 0.0, 1.0])
        pose = np.eye(4)
        pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, np.cross(forward, right), forward
        pose[:3, 3] = [1.0, 2.0, 1.4]
        poses.append(pose)
    colors = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)]
    depths = [np.full((24, 32), 2.0) for _ in range(n)]
    return export_scannet_scene(root / "scene0000_00", colors, depths, poses, K_COLOR, K_DEPTH)


def test_missing_colour_jpeg_is_named(tmp_path: Path) -> None:
    scene_dir = _scene(tmp_path)
    (scene_dir / "color" / "2.jpg").unlink()
    clip = ScanNetScene(scene_dir, report=LoadReport("t")).load_clip(6, points_size=(24, 32))
    assert 2 not in clip.frame_ids.tolist()
    (problem,) = clip.meta["frame_problems"]
    assert problem["kind"] == "missing_file" and problem["field"] == "color" and problem["file"].endswith("2.jpg")
    with pytest.raises(SampleError, match=r"color/2\.jpg"):
        ScanNetScene(scene_dir, report=LoadReport("t", strict=True)).load_clip(6, points_size=(24, 32))


def test_text_that_is_not_utf8_names_the_field() -> None:
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    bad = b"Qu\xe9 hay?".decode("utf-8", "surrogateescape")  # what argv / a surrogateescape read gives
    with pytest.raises(SampleError, match=r"field 'question' is not UTF-8 text \(byte e9"):
        ClipSample(sample_id="q", scene_id="s", task="infer", frames=frames, question=bad).validate()
    with pytest.raises(SampleError, match=r"field 'situation_text'"):
        ClipSample(
            sample_id="q", scene_id="s", task="infer", frames=frames, question="ok", situation_text=bad
        ).validate()
    ClipSample(sample_id="q", scene_id="s", task="infer", frames=frames, question="¿Qué hay?").validate()


def test_cli_infer_with_a_latin1_question_is_one_line(tmp_path: Path) -> None:
    scene_dir = _scene(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "loc3r.cli", "infer", "--model", str(REPO / "src/loc3r/assets/loc3r-tiny"),
         "--video", str(scene_dir), "--question", b"Qu\xe9?".decode("utf-8", "surrogateescape")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("loc3r infer: error:") and "'question'" in proc.stderr
    assert "Traceback" not in proc.stderr
