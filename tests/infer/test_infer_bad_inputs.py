"""``loc3r infer`` on bad input (issue 11): garbage --poses, images of mixed sizes, non-rigid poses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loc3r.data.schema import SampleError


def test_infer_rejects_bad_poses_and_mixed_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loc3r.apps.infer import load_frames
    from loc3r.cli import main

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((32, 32 if i != 1 else 48, 3), np.uint8)).save(folder / f"{i}.png")
    with pytest.raises(SampleError, match="1.png"):
        load_frames(folder, 3)
    skew = np.tile(np.eye(4), (2, 1, 1))
    skew[1, 0, 1] = 0.5  # not a rotation
    with pytest.raises(SampleError, match="poses"):
        load_frames(np.zeros((2, 8, 8, 3), np.uint8), 2, poses=skew)
    garbage = tmp_path / "poses.npy"
    garbage.write_bytes(b"\x93NUMPY garbage")
    code = main(["infer", "--model", str(tmp_path), "--video", str(folder), "--question", "q", "--poses", str(garbage)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("loc3r infer: error:") and "poses.npy" in err[0]
