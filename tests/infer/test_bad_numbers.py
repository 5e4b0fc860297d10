"""Issue 22 (numbers that make NaN or silently change the input): ``--max-depth -1``, a processor config with
``image_std`` 0, one without ``num_frames``, and more frames asked than a scan has — each is an error naming the
setting or a warning saying what happens, never silent."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from loc3r.cli import main
from loc3r.core.errors import ConfigError
from loc3r.core.geometry import GeometryError, depth_to_world_points

TINY = REPO / "src" / "loc3r" / "assets" / "loc3r-tiny"


def _tiny_copy(tmp_path: Path, **changes: object) -> Path:
    out = tmp_path / "ckpt"
    shutil.copytree(TINY, out)
    path = out / "loc3r_processor_config.json"
    cfg = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg["preprocessing" if key.startswith("image_") else key] = (
                {**cfg["preprocessing"], key: value} if key.startswith("image_") else value
            )
    path.write_text(json.dumps(cfg))
    return out


def test_non_positive_max_depth_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(GeometryError, match="max_depth"):
        depth_to_world_points(np.full((4, 4), 2.0), np.eye(3), np.eye(4), max_depth=-1)
    code = main(["prepare", "sqa3d", "--root", str(tmp_path), "--out", str(tmp_path / "o"), "--max-depth", "-1"])
    assert code == 2 and "--max-depth must be a positive number" in capsys.readouterr().err


def test_zero_image_std_names_the_checkpoint_file(tmp_path: Path) -> None:
    from loc3r.apps.infer import Loc3rPredictor

    ckpt = _tiny_copy(tmp_path, image_std=[0.0, 0.0, 0.0])
    with pytest.raises(ConfigError, match=r"loc3r_processor_config\.json.*image_std"):
        Loc3rPredictor.from_pretrained(ckpt)


def test_missing_num_frames_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from loc3r.apps.infer import Loc3rPredictor

    ckpt = _tiny_copy(tmp_path, num_frames=None)
    with caplog.at_level(logging.WARNING, logger="loc3r.apps.infer"):
        predictor = Loc3rPredictor.from_pretrained(ckpt)
    assert predictor.num_frames == 8
    assert any("records no 'num_frames'" in r.getMessage() for r in caplog.records)


def test_more_frames_than_the_scan_has_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from conftest import K_COLOR, K_DEPTH, camera_pose, make_frames
    from loc3r.data.scannet import ScanNetScene, export_scannet_scene

    colors, depths, _ = make_frames(4)
    scene = export_scannet_scene(tmp_path / "scene0000_00", colors, depths, [camera_pose(i, 4) for i in range(4)],
                                 K_COLOR, K_DEPTH)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="loc3r.data"):
        clip = ScanNetScene(scene).load_clip(8, points_size=None)
    assert len(clip.frame_ids) == 8
    assert any("has 4 usable frames but 8 were asked for" in r.getMessage() for r in caplog.records)


def test_zero_frames_names_the_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["infer", "--model", str(TINY), "--video", str(tmp_path), "--question", "hi", "--frames", "0"])
    assert code == 2 and "--frames / num_frames must be a positive number of frames, got 0" in capsys.readouterr().err
