"""``loc3r prepare``: report contents, resumability, bad inputs named, cache round-trip == direct loading,
and a weighted mixture of prepared caches trained end to end (issue 5 parts 4-5)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from loc3r.cli import main as cli_main
from loc3r.data.cache import clip_path, read_cache_info, read_scannet_clip
from loc3r.data.prepare import PrepareOptions, prepare_dataset
from loc3r.data.registry import build_dataset
from loc3r.data.schema import SampleError
from loc3r.data.spec import DatasetSpec
from loc3r.synthrooms.writer import SynthSettings, generate_dataset

FRAMES = 6  # = frames per scan, so every frame (and every bad file) is read


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(
        root,
        SynthSettings(
            num_scenes=4,
            frames=FRAMES,
            width=64,
            height=48,
            val_fraction=0.25,
            test_fraction=0.0,
            novel_view=False,
            situations_per_scene=2,
            questions_per_situation=2,
            vsi_questions_per_type=1,
            write_video=True,
        ),
        progress=False,
    )
    return root


def _opts(dataset: str, root: Path, out: Path, **kw: object) -> PrepareOptions:
    return PrepareOptions(
        dataset=dataset, root=root, out=out, num_frames=FRAMES, points_size=(12, 16), progress=False, **kw
    )  # type: ignore[arg-type]


def _same(a: object, b: object) -> None:
    for name in ("sample_id", "scene_id", "task", "question", "answer", "answers", "situation_text", "options"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("frames", "poses", "points", "frame_indices", "agent_position"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), name
    assert a.agent_yaw == b.agent_yaw and a.meta == b.meta  # type: ignore[attr-defined]


def test_synthrooms_report_and_roundtrip(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    result = prepare_dataset(_opts("synthrooms", synth, out))
    scenes = sorted(p.name for p in (synth / "scans").iterdir())
    assert result.clips_total == len(scenes) == result.clips_written and not result.clips_failed
    assert result.frames_written == FRAMES * len(scenes)
    assert result.samples > 0 and result.samples_ready == result.samples
    assert result.report.counts["frames_valid"] == FRAMES * len(scenes) and result.report.ok
    saved = json.loads((out / "prepare_report.json").read_text())
    assert saved["clips_written"] == len(scenes) and saved["report"]["counts"]["clips"] == len(scenes)
    assert read_cache_info(out)["num_frames"] == FRAMES
    for split in ("train", "val"):
        direct = build_dataset(
            DatasetSpec(kind="synth", root=synth, split=split, options={"points_size": [12, 16]}), FRAMES
        )
        cached = build_dataset(DatasetSpec(kind="synth", root=synth, split=split, options={"cache": str(out)}), FRAMES)
        assert len(direct) == len(cached) > 0
        for i in range(len(direct)):
            _same(direct[i], cached[i])
    # the trainer refuses a cache prepared with another frame count
    with pytest.raises(SampleError, match="frames per clip"):
        build_dataset(DatasetSpec(kind="synth", root=synth, split="train", options={"cache": str(out)}), FRAMES + 1)


def test_resume_skips_done_and_keeps_them(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    first = prepare_dataset(_opts("scannet", synth / "scans", out, workers=2))  # process pool
    assert first.report.ok and first.clips_written == first.clips_total
    files = sorted((out / "clips").glob("*.safetensors"))
    stamps = {p: p.stat().st_mtime_ns for p in files}
    files[0].unlink()
    (out / "clips" / f".{files[1].name}.999.tmp").write_bytes(b"half")  # debris of a killed run is ignored
    again = prepare_dataset(_opts("scannet", synth / "scans", out))
    assert again.clips_written == 1 and again.clips_existing == len(files) - 1
    for p in files[1:]:
        assert p.stat().st_mtime_ns == stamps[p]  # untouched
    assert files[0].is_file()
    with pytest.raises(SampleError, match="other settings"):
        prepare_dataset(PrepareOptions("scannet", synth / "scans", out, num_frames=3, progress=False))


def _referenced(synth: Path) -> list[str]:
    """Scenes the SQA3D-format train/val questions use (the ones `prepare sqa3d` prepares)."""
    ids: set[str] = set()
    for split in ("train", "val"):
        data = json.loads((synth / "sqa3d" / f"v1_balanced_questions_{split}_scannetv2.json").read_text())
        ids |= {q["scene_id"] for q in data["questions"]}
    return sorted(ids)


def _broken_scans(synth: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy of the scans with a truncated depth PNG in scene 0 and a 3-row pose file in scene 1."""
    scans = tmp_path / "scans"
    shutil.copytree(synth / "scans", scans)
    names = _referenced(synth)
    assert len(names) >= 3
    png = sorted((scans / names[0] / "depth").glob("*.png"))[2]
    png.write_bytes(png.read_bytes()[: len(png.read_bytes()) // 2])  # truncated PNG
    pose = sorted((scans / names[1] / "pose").glob("*.txt"))[1]
    pose.write_text("\n".join(pose.read_text().splitlines()[:3]) + "\n")  # 3-row pose file
    return scans, names


def test_bad_inputs_are_named_and_preparation_continues(synth: Path, tmp_path: Path) -> None:
    scans, names = _broken_scans(synth, tmp_path)
    shutil.rmtree(scans / names[2])  # missing scene folder (referenced by the annotations)
    sqa = tmp_path / "sqa3d"
    shutil.copytree(synth / "sqa3d", sqa)
    qfile = sqa / "v1_balanced_questions_train_scannetv2.json"
    data = json.loads(qfile.read_text())
    orphan = data["questions"].pop(0)["question_id"]  # an annotation whose question_id has no question
    qfile.write_text(json.dumps(data))
    out = tmp_path / "cache"
    opts = _opts("sqa3d", sqa, out, scannet_root=scans, splits=["train", "val"])
    result = prepare_dataset(opts)
    text = result.summary()
    assert str(next((scans / names[0] / "depth").glob("*.png")).parent) in text  # truncated PNG's folder named
    kinds = {e.kind for e in result.report.errors}
    assert {"unreadable_image", "bad_pose_file", "missing_scene"} <= kinds
    assert any(str(orphan) in str(e) for e in result.report.errors)  # annotation without question
    assert any(e.field == "pose" and "3" in e.message for e in result.report.errors_of("bad_pose_file"))
    assert result.clips_failed == [names[2]] and result.clips_written == len(names) - 1
    assert 0 < result.samples_ready < result.samples
    # the damaged scenes still give clips of valid frames (bad frames re-sampled away)
    clip = read_scannet_clip(clip_path(out, names[1]))
    assert clip.frames.shape[0] == FRAMES and np.isfinite(clip.poses).all()
    # --check validates the same inputs and writes nothing new
    check = prepare_dataset(_opts("sqa3d", sqa, tmp_path / "check", scannet_root=scans, check=True))
    assert {"unreadable_image", "missing_scene"} <= {e.kind for e in check.report.errors}
    assert not (tmp_path / "check").exists()


def test_strict_stops_and_keeps_prepared(synth: Path, tmp_path: Path) -> None:
    scans, names = _broken_scans(synth, tmp_path)
    shutil.copytree(scans / names[2], scans / "aaa_first")  # a good scene prepared before the bad ones
    out = tmp_path / "cache"
    with pytest.raises(SampleError, match="png"):
        prepare_dataset(_opts("scannet", scans, out, strict=True))
    assert clip_path(out, "aaa_first").is_file()
    assert not clip_path(out, names[0]).exists()


def _vsibench(synth: Path, tmp_path: Path) -> tuple[Path, Path]:
    videos = tmp_path / "videos"
    (videos / "scannet").mkdir(parents=True)
    rows = []
    for k, mp4 in enumerate(sorted((synth / "vsibench" / "synthrooms").glob("*.mp4"))):
        os.link(mp4, videos / "scannet" / mp4.name)
        for q in range(2):
            rows.append(
                {
                    "id": 10 * k + q,
                    "dataset": "scannet",
                    "scene_name": mp4.stem,
                    "question_type": "object_counting",
                    "question": f"How many chairs are in the room? ({q})",
                    "options": None,
                    "ground_truth": str(q + 1),
                }
            )
    rows.append({**rows[0], "id": 99, "scene_name": "broken"})
    (videos / "scannet" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real video")
    records = tmp_path / "vsi.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in rows))
    return records, videos


def test_vsibench_undecodable_video_named_and_roundtrip(synth: Path, tmp_path: Path) -> None:
    records, videos = _vsibench(synth, tmp_path)
    out = tmp_path / "cache"
    code = cli_main(
        ["prepare", "vsibench", "--root", str(records), "--video-root", str(videos), "--out", str(out)]
        + ["--frames", str(FRAMES), "--quiet"]
    )
    assert code == 1  # an error was reported, the rest prepared
    saved = json.loads((out / "prepare_report.json").read_text())
    bad = [e for e in saved["report"]["errors"] if e["kind"] == "undecodable_video"]
    assert bad and bad[0]["file"].endswith("broken.mp4") and bad[0]["field"] == "video"
    assert saved["clips_written"] == saved["clips_total"] - 1
    spec = {"kind": "vsibench", "root": records, "split": "train"}
    direct = build_dataset(DatasetSpec(**spec, options={"video_root": str(videos)}), FRAMES)
    cached = build_dataset(DatasetSpec(**spec, options={"cache": str(out)}), FRAMES)
    for i in range(len(direct) - 1):  # the last record is the broken video
        _same(direct[i], cached[i])
    with pytest.raises(SampleError, match="broken"):
        cached[len(cached) - 1]


def test_mixture_of_prepared_caches_trains(synth: Path, tmp_path: Path) -> None:
    """A weighted mixture (SQA3D-format situated data + VSI-Bench + SynthRooms) read from caches, end to end."""
    from loc3r.train.config import config_from_dict
    from loc3r.train.recipe import train

    scans_cache, synth_cache = tmp_path / "c_scannet", tmp_path / "c_synth"
    assert prepare_dataset(_opts("scannet", synth / "scans", scans_cache)).report.ok
    assert prepare_dataset(_opts("synthrooms", synth, synth_cache)).report.ok
    records, videos = _vsibench(synth, tmp_path)
    prepare_dataset(_opts("vsibench", records, tmp_path / "c_vsi", video_root=videos))
    raw = {
        "output_dir": str(tmp_path / "run"),
        "model": {"backbone": "qwen2_5_vl", "init": "tiny", "tiny": {"vocab_size": 400}, "freeze_vision_tower": False},
        "data": {
            "train": [
                {
                    "kind": "sqa3d",
                    "root": str(synth / "sqa3d"),
                    "weight": 3.0,
                    "options": {"convention": "loc3r_world", "cache": str(scans_cache)},
                },
                {
                    "kind": "vsibench",
                    "root": str(records),
                    "weight": 1.0,
                    "max_samples": 4,
                    "options": {"cache": str(tmp_path / "c_vsi")},
                },
                {"kind": "synth", "root": str(synth), "weight": 2.0, "options": {"cache": str(synth_cache)}},
            ],
            "num_frames": FRAMES,
            "samples_per_epoch": 12,
        },
        "optim": {"lr": 1e-3},
        "train": {"max_steps": 2, "batch_size": 2, "progress_bar": False, "save_final_model": False},
    }
    cfg = config_from_dict(raw)
    from loc3r.data.mixture import MixtureSampler
    from loc3r.train.builders import build_datasets

    mixture, _ = build_datasets(cfg)
    sampler = MixtureSampler(mixture, samples_per_epoch=12, seed=0)
    assert sampler.counts.tolist() == [6, 2, 4]  # 12 * (3, 1, 2) / 6: the weights decide the draw
    drawn = [mixture[i] for i in sampler.indices(0)]
    tasks = {s.task for s in drawn}
    assert {"sqa3d", "vsibench"} <= tasks and any(t.startswith("synth_") for t in tasks)
    result = train(cfg)
    assert result.step == 2 and result.nonfinite_steps == 0
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if r.strip()]
    assert all(np.isfinite(r["train/loss"]) for r in rows if "train/loss" in r)


def test_sqa3d_kind_from_scannet_cache_equals_direct(synth: Path, tmp_path: Path) -> None:
    """SQA3D-format records on ScanNet-layout scans: frames, poses, points and agent targets from the cache
    equal the loader's own (the axis alignment / situation conversion stays in the loader)."""
    out = tmp_path / "cache"
    assert prepare_dataset(_opts("scannet", synth / "scans", out)).report.ok
    base = {"convention": "loc3r_world"}
    spec = {"kind": "sqa3d", "root": synth / "sqa3d", "split": "val"}
    direct = build_dataset(
        DatasetSpec(**spec, options={**base, "scannet_root": str(synth / "scans"), "points_size": [12, 16]}), FRAMES
    )
    cached = build_dataset(DatasetSpec(**spec, options={**base, "cache": str(out)}), FRAMES)
    assert len(direct) == len(cached) > 0
    for i in range(len(direct)):
        _same(direct[i], cached[i])
    assert cached[0].agent_position is not None


def test_vsibench_scan_roots_give_layout_targets(synth: Path, tmp_path: Path) -> None:
    """VSI-style records whose scene has a posed scan take their frames from it (poses + world points); a scene
    without scan and a scan with too few valid poses keep the mp4 and are named in the report."""
    records, videos = _vsibench(synth, tmp_path)
    scans = tmp_path / "scannet_scans"
    shutil.copytree(synth / "scans", scans)
    names = sorted(p.stem for p in (videos / "scannet").glob("synth*.mp4"))
    poor = scans / names[-1] / "pose" / "0.txt"  # one invalid pose: 5 valid < 6 frames per clip
    poor.write_text("\n".join(["-inf -inf -inf -inf"] * 4) + "\n")
    out = tmp_path / "cache"
    code = cli_main(
        ["prepare", "vsibench", "--root", str(records), "--video-root", str(videos), "--out", str(out), "--quiet",
         "--frames", str(FRAMES), "--points-size", "12x16", "--scan-root", f"scannet={scans}"]
    )  # fmt: skip
    assert code == 1  # errors reported, the rest prepared
    saved = json.loads((out / "prepare_report.json").read_text())
    assert saved["samples_with_layout_targets"] == 2 * (len(names) - 1)
    errors = {e["kind"]: e for e in saved["report"]["errors"]}
    assert errors["scene_without_scan"]["field"] == "scene_name" and "id=99" in errors["scene_without_scan"]["record"]
    assert "'broken'" in errors["scene_without_scan"]["message"]
    poses = errors["too_few_valid_poses"]
    assert poses["field"] == "pose" and names[-1] in poses["message"] and poses["file"].endswith("pose")

    spec = {"kind": "vsibench", "root": records, "split": "train"}
    cached = build_dataset(DatasetSpec(**spec, options={"cache": str(out)}), FRAMES)
    direct = build_dataset(
        DatasetSpec(**spec, options={"video_root": str(videos), "scan_roots": {"scannet": str(scans)},
                                     "points_size": [12, 16]}), FRAMES
    )  # fmt: skip
    kinds = []
    for i in range(len(cached) - 1):  # the last record is the broken video
        sample = cached[i]
        kinds.append(sample.meta["frames_from"])
        if sample.scene_id == names[-1]:
            assert sample.meta["frames_from"] == "video" and sample.poses is None and sample.points is None
        else:
            assert sample.meta["frames_from"] == "scan" and sample.poses.shape == (FRAMES, 4, 4)
            assert np.isfinite(sample.points).any()
        _same(direct[i], sample)
    assert kinds.count("scan") == 2 * (len(names) - 1) and kinds.count("video") == 2
