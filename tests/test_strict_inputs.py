"""Nothing silent (issue 11): every bad frame, shard, checkpoint and config value is named, counted or refused.

One test per input class: frames of another size (colour, depth) and intrinsics that fit no frame; skipped frames
reaching the consumer (FrameLog, --strict); eval shard merges (incomplete, overlapping, other model, no sidecar);
checkpoints (missing processor config, NaN weights, truncated weights, special-token ids that disagree); strict
``model.tiny`` / ``model.loc3r``; damaged newest training checkpoint; infer's garbage ``--poses``, mixed image
sizes and non-rigid poses; train's user errors as one line on stderr with exit 2.
"""

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


# ------------------------------------------------------------------------------------------------ part 1: frames


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


# ------------------------------------------------------------------------------------------------ part 2: shards


def _shard(out: Path, i: int, n: int, ids: list[str], settings: dict, skipped: list | None = None) -> Path:
    from loc3r.evaluate.runner import write_jsonl
    from loc3r.evaluate.shards import write_shard_info

    path = out / f"predictions-shard{i}of{n}.jsonl"
    write_jsonl(path, [{"set": "vsibench", "split": "test", "sample_id": s} for s in ids])
    skipped = skipped or []
    write_shard_info(path, shard=(i, n), total=10, assigned=len(ids) + len(skipped), predicted=len(ids),
                     skipped=skipped, settings=settings)  # fmt: skip
    return path


def test_merge_refuses_incomplete_overlapping_or_mismatched_shards(tmp_path: Path) -> None:
    from loc3r.evaluate.runner import merge_checked

    same = {"model": "abc", "frames": "8 uniformly sampled"}
    gone = [{"index": 9, "sample_id": "q9", "reason": "video is missing"}]
    a = _shard(tmp_path / "a", 0, 2, ["q0", "q2", "q4", "q6", "q8"], same)
    b = _shard(tmp_path / "a", 1, 2, ["q1", "q3", "q5", "q7"], same, gone)
    records, skipped, warnings, _ = merge_checked([a, b])
    assert len(records) == 9 and skipped == gone and warnings == []
    with pytest.raises(SampleError, match=r"shards \[1\] of 2 are missing"):
        merge_checked([a])
    other_model = _shard(tmp_path / "b", 1, 2, ["q1", "q3", "q5", "q7"], {**same, "model": "xyz"}, gone)
    with pytest.raises(SampleError, match="setting 'model'"):
        merge_checked([a, other_model])
    other_frames = _shard(tmp_path / "c", 1, 2, ["q1", "q3", "q5", "q7"], {**same, "frames": "16 uniformly sampled"})
    with pytest.raises(SampleError, match="setting 'frames'"):
        merge_checked([a, other_frames])
    twice = _shard(tmp_path / "d", 0, 2, ["q10"], same)
    with pytest.raises(SampleError, match="also given"):
        merge_checked([a, twice])
    (tmp_path / "e").mkdir()
    bare = tmp_path / "e" / "p.jsonl"
    bare.write_text(json.dumps({"set": "vsibench", "split": "test", "sample_id": "q1"}) + "\n")
    with pytest.raises(SampleError, match="p.shard.json"):
        merge_checked([a, bare])
    records, _, warnings, _ = merge_checked([a], allow_partial=True)
    assert len(records) == 5 and any("missing" in w for w in warnings)


# ------------------------------------------------------------------------------------------------ part 3: checkpoints


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    tok = build_tiny_tokenizer(["I am standing in the room.", "What is on my left? the sofa"], 300, "qwen2_5_vl")
    path = tmp_path_factory.mktemp("ckpt") / "final"
    Loc3rForConditionalGeneration.tiny("qwen2_5_vl", tok, seed=0).save_pretrained(path)
    return path


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_checkpoint_must_be_self_contained_and_finite(saved_model: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration as M

    M.from_pretrained(saved_model)  # the untouched checkpoint loads
    no_proc = _copy(saved_model, tmp_path / "no_proc")
    (no_proc / "loc3r_processor_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="loc3r_processor_config.json is missing"):
        M.from_pretrained(no_proc)
    nan = _copy(saved_model, tmp_path / "nan")
    weights = load_file(str(nan / "model.safetensors"))
    name = sorted(k for k in weights if weights[k].is_floating_point())[0]
    weights[name][..., 0] = float("nan")
    save_file(weights, str(nan / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=f"NaN/inf values in .*{name}"):
        M.from_pretrained(nan)
    cut = _copy(saved_model, tmp_path / "cut")
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut"):
        M.from_pretrained(cut)
    swapped = _copy(saved_model, tmp_path / "swapped")
    config = json.loads((swapped / "config.json").read_text())
    config["pos_token_id"], config["ori_token_id"] = config["ori_token_id"], config["pos_token_id"]
    (swapped / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="field 'pos_token_id'"):
        M.from_pretrained(swapped)


# ------------------------------------------------------------------------------------------------ part 4: configs


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model.tiny.hiden_size=32", "hiden_size"),
        ("model.tiny.text_config={hiden_size: 32}", "hiden_size"),
        ("model.tiny.text_config={num_attention_heads: 3}", "not divisible"),
        ("model.tiny.vision_config={depth: 0}", "vision_config.depth"),
        ("model.loc3r.bev_loss_weight=-1", "bev_loss_weight"),
        ("model.loc3r.situation_loss_weight=.nan", "situation_loss_weight"),
        ("model.loc3r.layout_objectiv=true", "layout_objectiv"),
    ],
)
def test_model_section_is_strict_at_load_time(override: str, named: str) -> None:
    from loc3r.train.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=named):
        load_config("configs/train_tiny.yaml", [override])


def test_valid_tiny_sizes_still_load() -> None:
    from loc3r.train.config import load_config

    cfg = load_config("configs/train_tiny.yaml", ["model.tiny.text_config={hidden_size: 32, num_attention_heads: 2}"])
    assert cfg.model.tiny["text_config"]["hidden_size"] == 32


# ------------------------------------------------------------------------------------------------ part 6: resume


def _fake_checkpoint(root: Path, step: int) -> Path:
    import torch
    from safetensors.torch import save_file

    from loc3r.train.checkpointing import TrainerState, save_rng_state

    path = root / f"step-{step:08d}"
    path.mkdir(parents=True)
    save_file({"w": torch.ones(64)}, str(path / "model.safetensors"))
    torch.save({"state": {}, "param_groups": []}, path / "optimizer.bin")
    save_rng_state(path / "rng_state_0.safetensors")
    (path / "config.yaml").write_text("seed: 0\n")
    (path / "trainer_state.json").write_text(TrainerState(step=step).to_json())
    return path


@pytest.mark.parametrize("damage", ["weights", "optimizer", "state"])
def test_resume_falls_back_past_a_damaged_newest_checkpoint(tmp_path: Path, damage: str) -> None:
    from loc3r.train.checkpointing import checkpoint_damage, newest_good_checkpoint

    good = _fake_checkpoint(tmp_path, 10)
    newest = _fake_checkpoint(tmp_path, 20)
    assert checkpoint_damage(newest) is None and newest_good_checkpoint(tmp_path) == (newest, [])
    file = {"weights": "model.safetensors", "optimizer": "optimizer.bin", "state": "trainer_state.json"}[damage]
    data = (newest / file).read_bytes()
    (newest / file).write_bytes(data[: len(data) - 40])
    path, damaged = newest_good_checkpoint(tmp_path)
    assert path == good and damaged[0][0] == newest and file in damaged[0][1]


# ------------------------------------------------------------------------------------------------ infer inputs


def test_infer_rejects_bad_poses_and_mixed_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loc3r.cli import main
    from loc3r.infer import load_frames

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


# ------------------------------------------------------------------------------------------------ train user errors


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("data.train=[{kind: synth, root: /nonexistent/synth, split: train}]", "/nonexistent/synth"),
        ("data.train=[{kind: sinth, root: x, split: train}]", "sinth"),
    ],
)
def test_train_user_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, named: str
) -> None:
    from loc3r.cli import main

    code = main(["train", "configs/train_tiny.yaml", "--set", f"output_dir={tmp_path / 'run'}", "--set", override,
                 "--set", "data.val=[]"])  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("loc3r train")]
    assert code == 2 and len(err) == 1 and named in err[0] and "Traceback" not in capsys.readouterr().err
