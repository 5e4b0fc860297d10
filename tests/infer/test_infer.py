"""``Loc3rPredictor`` / ``loc3r infer`` on a tiny saved checkpoint and a generated SynthRooms scan:
every input kind (array, image folder, scan folder), BEV picture, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import save_tiny_checkpoint
from loc3r.apps.infer import Loc3rPredictor, load_frames
from loc3r.data.schema import SampleError

CORPUS = ["I am standing in the room.", "What is on my left? the sofa", "x 1.2 y -0.4 yaw 90 0 1 2 3 4 5 6 7 8 9"]


def _save_tiny(path: Path, **flags: object) -> Path:
    return save_tiny_checkpoint(path, CORPUS, **flags)


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loc3r.synthrooms.writer import SynthSettings, generate_dataset

    root = tmp_path_factory.mktemp("synth")
    generate_dataset(
        root,
        SynthSettings(num_scenes=1, frames=4, width=32, height=32, write_video=False, situations_per_scene=1,
                      val_fraction=0.0, test_fraction=0.0, novel_view=False),
        progress=False,
    )  # fmt: skip
    return next((root / "scans").iterdir())


@pytest.fixture(scope="module")
def loc3r_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("ckpt") / "loc3r", layout_objective=True, situation_objective=True)


def test_scan_folder_with_picture(scan: Path, loc3r_dir: Path, tmp_path: Path) -> None:
    predictor = Loc3rPredictor.from_pretrained(loc3r_dir, num_frames=4)
    result = predictor.predict(scan, "I am facing the sofa.", "What is on my left?", bev_png=tmp_path / "b.png",
                               gt_position=[1.0, 1.0, 0.0], gt_heading=0.5, max_new_tokens=4)  # fmt: skip
    assert result.position.shape == (2,) and np.isfinite(result.position).all()
    assert result.sigma.shape == (2,) and (result.sigma > 0).all()
    assert -np.pi <= result.heading < np.pi and 0.0 <= result.confidence <= 1.0
    assert result.position_world is not None  # poses came with the scan
    assert Path(result.bev_png_path).read_bytes()[:4] == b"\x89PNG"
    assert isinstance(result.answer, str)
    json.dumps(result.to_dict())


def test_array_and_image_folder_give_same_answer(scan: Path, loc3r_dir: Path, tmp_path: Path) -> None:
    frames, poses, _, _ = load_frames(scan, 4)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    predictor = Loc3rPredictor.from_pretrained(loc3r_dir, num_frames=4)
    a = predictor.predict(frames, None, "What is on my left?", max_new_tokens=3)
    b = predictor.predict(folder, None, "What is on my left?", max_new_tokens=3)
    assert a.answer == b.answer
    np.testing.assert_allclose(a.position, b.position, atol=1e-5)
    assert a.position_world is None  # no poses -> BEV only


def test_bad_input(scan: Path, loc3r_dir: Path, tmp_path: Path) -> None:
    predictor = Loc3rPredictor.from_pretrained(loc3r_dir, num_frames=4)
    with pytest.raises(FileNotFoundError, match="no such video file"):
        predictor.predict(tmp_path / "missing.mp4", None, "q?")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SampleError, match="holds no images"):
        predictor.predict(tmp_path / "empty", None, "q?")
    with pytest.raises(SampleError, match="poses must be"):
        predictor.predict(np.zeros((4, 32, 32, 3), np.uint8), None, "q?", poses=np.eye(4)[None])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Loc3rPredictor.from_pretrained(tmp_path / "nope")
    cue = _save_tiny(tmp_path / "cue", situation_objective=True, cue_injection=True)
    with pytest.raises(SampleError, match="cue injection"):
        Loc3rPredictor.from_pretrained(cue, num_frames=4).predict(np.zeros((4, 32, 32, 3), np.uint8), None, "q?")


def test_infer_cli(scan: Path, loc3r_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loc3r.cli import main

    code = main(["infer", "--model", str(loc3r_dir), "--video", str(scan), "--question", "What is on my left?",
                 "--frames", "4", "--bev", str(tmp_path / "c.png"), "--json"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["bev_png_path"].endswith("c.png") and len(out["position"]) == 2
    assert main(["infer", "--model", str(tmp_path / "x"), "--video", str(scan), "--question", "q"]) == 2
