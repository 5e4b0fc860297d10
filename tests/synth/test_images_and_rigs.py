"""Static images and camera rigs: SynthRooms' extra splits (``test_image``, ``test_rig``) leave every existing split
byte-identical, rig scans hold whole time steps of front/left/right cameras with their poses (anchor = camera 0 at
t = 0), the loaders/infer take one image, an image set and a rig folder, and bad rigs get a clear message."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loc3r.data.schema import SampleError
from loc3r.synthrooms.writer import RIG_CAMERAS, SynthSettings, generate_dataset

BASE = dict(num_scenes=2, frames=6, width=32, height=32, write_video=False, situations_per_scene=1,
            val_fraction=0.0, test_fraction=0.5, novel_view=False)  # fmt: skip


def _digest(scan: Path) -> str:
    """Every file of a scan but ``scene.json``, whose settings fingerprint names the (different) generator settings."""
    h = hashlib.sha256()
    for p in sorted(scan.rglob("*")):
        if p.is_file() and p.name != "scene.json":
            h.update(p.relative_to(scan).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rigs")
    generate_dataset(root / "plain", SynthSettings(**BASE), progress=False)
    generate_dataset(root / "extra", SynthSettings(**BASE, extra_splits=("image", "rig")), progress=False)
    return root / "plain", root / "extra"


@pytest.mark.slow
def test_extra_splits_leave_existing_splits_unchanged(datasets: tuple[Path, Path]) -> None:
    plain, extra = datasets
    index_plain = json.loads((plain / "synthrooms.json").read_text())
    index_extra = json.loads((extra / "synthrooms.json").read_text())
    for split, scenes in index_plain["splits"].items():
        assert index_extra["splits"][split] == scenes
        for scene in scenes:
            assert _digest(extra / "scans" / scene) == _digest(plain / "scans" / scene), scene
        for name in (f"sqa3d/v1_balanced_questions_{split}_scannetv2.json", f"vsibench/{split}.jsonl"):
            if (plain / name).is_file():
                assert (extra / name).read_bytes() == (plain / name).read_bytes(), name
    assert "test_image" not in index_plain["splits"]
    test_rooms = [s.split("_")[0] for s in index_plain["splits"]["test"]]
    assert [s.split("_")[0] for s in index_extra["splits"]["test_image"]] == test_rooms
    assert [s.split("_")[0] for s in index_extra["splits"]["test_rig"]] == test_rooms


@pytest.mark.slow
def test_rig_and_image_scans_load_as_whole_views(datasets: tuple[Path, Path]) -> None:
    from loc3r.core.geometry import anchor_frame
    from loc3r.data.scannet import ScanNetScene

    extra = datasets[1]
    index = json.loads((extra / "synthrooms.json").read_text())
    rig = ScanNetScene(extra / "scans" / index["splits"]["test_rig"][0])
    n = len(RIG_CAMERAS)
    clip = rig.load_clip(4, points_size=None)  # 4 frames asked -> max(1, 4 // 3) = 1 time step of 3 cameras
    assert clip.frames.shape[0] == n
    clip = rig.load_clip(6, points_size=None)
    assert clip.frames.shape[0] == 2 * n
    anchor = anchor_frame(clip.poses[0])  # camera 0 (front) at t = 0
    yaws = anchor.poses_to_bev(clip.poses)[:, :2, 2]
    yaw = np.degrees(np.arctan2(yaws[:, 1], yaws[:, 0]))
    # front, left, right relative to front (the walk's camera pitch tilts the turned cameras' BEV yaw by < 1 degree)
    np.testing.assert_allclose(yaw[:n], [0.0, 60.0, -60.0], atol=1.0)
    image = ScanNetScene(extra / "scans" / index["splits"]["test_image"][0])
    assert image.load_clip(8, points_size=None).frames.shape[0] == 1  # one still, never repeated to 8
    questions = json.loads((extra / "sqa3d" / "v1_balanced_questions_test_rig_scannetv2.json").read_text())
    assert questions["questions"], "the rig split has situated questions"


def _rig_folder(path: Path, counts: dict[str, int], static: bool = True) -> Path:
    from loc3r.synthrooms.writer import rig_extrinsic

    cams = []
    for (name, yaw), count in zip(RIG_CAMERAS, counts.values(), strict=True):
        (path / name).mkdir(parents=True)
        for t in range(count):
            Image.fromarray(np.full((28, 28, 3), 40 * t, np.uint8)).save(path / name / f"{t:04d}.png")
        cams.append({"name": name, "extrinsic": rig_extrinsic(yaw).tolist()})
    (path / "rig.json").write_text(json.dumps({"cameras": cams, "static": static}))
    return path


def test_infer_inputs_image_set_and_rig(tmp_path: Path) -> None:
    from loc3r.apps.infer import load_frames

    one = tmp_path / "one.png"
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(one)
    frames, poses, _, _ = load_frames(one, 8)
    assert frames.shape == (1, 20, 24, 3) and poses is None
    other = tmp_path / "two.png"
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(other)
    frames, _, _, _ = load_frames([one, other], 8)
    assert frames.shape[0] == 2
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(SampleError, match="all images of a set must have one size"):
        load_frames([one, tmp_path / "small.png"], 8)
    rig = _rig_folder(tmp_path / "rig", {"front": 4, "left": 4, "right": 4})
    frames, poses, _, _ = load_frames(rig, 6)
    assert frames.shape[0] == 6 and poses.shape == (6, 4, 4)
    np.testing.assert_array_equal(frames[0], frames[2])  # t0 front, t0 left, t0 right: interleaved per step
    assert frames[3].mean() > frames[0].mean()
    bad = _rig_folder(tmp_path / "bad", {"front": 4, "left": 3, "right": 4})
    with pytest.raises(SampleError, match="disagree on the frame count"):
        load_frames(bad, 6)


@pytest.mark.slow
def test_infer_cli_on_one_image_and_a_rig(tmp_path: Path) -> None:
    import subprocess
    import sys

    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    tok = build_tiny_tokenizer(["I am standing in the room.", "What is on my left?"], vocab_size=300,
                               backbone="qwen2_5_vl")  # fmt: skip
    model = Loc3rForConditionalGeneration.tiny("qwen2_5_vl", tok, seed=0, layout_objective=True,
                                               situation_objective=True, camera_prior="poses")  # fmt: skip
    model.save_pretrained(tmp_path / "final")
    rig = _rig_folder(tmp_path / "rig", {"front": 2, "left": 2, "right": 2})
    one = tmp_path / "one.png"
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(one)
    np.save(tmp_path / "pose.npy", np.eye(4)[None])
    for video, extra in ((str(rig), []), (str(one), ["--poses", str(tmp_path / "pose.npy")])):
        proc = subprocess.run([sys.executable, "-m", "loc3r.cli", "infer", "--model", str(tmp_path / "final"),
                               "--video", video, "--question", "What is on my left?", "--frames", "6", "--json",
                               *extra], capture_output=True, text=True, timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert len(out["position"]) == 2 and out["position_world"] is not None
