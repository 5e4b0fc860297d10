"""SynthRooms writer and CLI: resumability after a kill, atomic scans, settings checks, layouts files, errors."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loc3r.cli import main as cli_main
from loc3r.synthrooms.meta_info import layouts_to_meta_info
from loc3r.synthrooms.scene import generate_layout
from loc3r.synthrooms.writer import DatasetError, SynthSettings, generate_dataset, plan_jobs, read_index

SMALL = SynthSettings(
    num_scenes=3,
    frames=4,
    width=32,
    height=32,
    seed=5,
    situations_per_scene=2,
    questions_per_situation=2,
    vsi_questions_per_type=1,
)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ds"
    assert not generate_dataset(out, SMALL, progress=False).failed
    return out


def test_half_written_scan_is_discarded_and_redone(tmp_path, reference):
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    victim = "synth00001_00"
    # what a kill mid-write leaves: a temp dir with part of the files, no final directory, a stale index
    tmp = out / "scans" / f".tmp.{victim}.4242"
    os.replace(out / "scans" / victim, tmp)
    (tmp / "scene.json").unlink()
    for p in list((tmp / "depth").glob("*.png"))[:2]:
        p.unlink()
    before = {p: p.stat().st_mtime_ns for p in (out / "scans" / "synth00000_00").rglob("*")}
    summary = generate_dataset(out, SMALL, progress=False)
    assert summary.written == [victim]
    assert sorted(summary.skipped) == sorted(s for s in read_index(out)["scenes"] if s != victim)
    assert not tmp.exists()
    assert {p: p.stat().st_mtime_ns for p in (out / "scans" / "synth00000_00").rglob("*")} == before
    assert _tree(out) == _tree(reference)


def test_sigkill_mid_run_leaves_no_finished_looking_scan_and_resume_completes(tmp_path):
    settings = SynthSettings(
        num_scenes=4,
        frames=24,
        width=64,
        height=64,
        seed=2,
        situations_per_scene=1,
        questions_per_situation=1,
        vsi_questions_per_type=1,
        write_video=False,
    )
    out = tmp_path / "ds"
    cmd = [
        sys.executable,
        "-m",
        "loc3r.cli",
        "synth",
        "--out",
        str(out),
        "--scenes",
        "4",
        "--frames",
        "24",
        "--size",
        "64x64",
        "--seed",
        "2",
        "--situations",
        "1",
        "--questions-per-situation",
        "1",
        "--vsi-per-type",
        "1",
        "--no-video",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    scans = out / "scans"
    while time.time() < deadline and proc.poll() is None:
        if scans.is_dir() and any(not p.name.startswith(".") for p in scans.iterdir()):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = [p for p in scans.iterdir() if not p.name.startswith(".")]
    for p in finished:  # a directory under its final name is always complete
        assert json.loads((p / "scene.json").read_text())["complete"]
        assert len(list((p / "depth").glob("*.png"))) == 24
    summary = generate_dataset(out, settings, progress=False)
    assert not summary.failed and len(summary.skipped) == len(finished)
    assert read_index(out)["complete"]
    assert not [p for p in scans.iterdir() if p.name.startswith(".tmp")]
    ref = tmp_path / "ref"
    generate_dataset(ref, settings, progress=False)
    assert _tree(out) == _tree(ref)


def test_other_settings_in_same_directory_are_refused(tmp_path, reference):
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    with pytest.raises(DatasetError, match="different settings"):
        generate_dataset(out, SynthSettings(**{**SMALL.to_dict(), "frames": 5}), progress=False)
    (out / "synthrooms.json").unlink()  # the per-scan fingerprints still protect the directory
    with pytest.raises(DatasetError, match="different generator settings"):
        generate_dataset(out, SynthSettings(**{**SMALL.to_dict(), "frames": 5}), progress=False)


def test_concurrent_run_on_same_directory_is_refused(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    with open(out / ".synthrooms.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(DatasetError, match="another 'loc3r synth' run"):
            generate_dataset(out, SMALL, progress=False)


def test_split_planning():
    jobs = plan_jobs(SynthSettings(num_scenes=20, seed=1))
    splits = [j.split for j in jobs]
    assert splits.count("test") == 2 and splits.count("val") == 2 and splits.count("train") == 16
    nv = [j for j in jobs if j.split == "test_novel_view"]
    assert len(nv) == 2 and all(j.trajectory == "novel_view" and j.scene_id.endswith("_01") for j in nv)
    assert {j.room_id for j in nv} == {j.room_id for j in jobs if j.split == "test"}
    assert [j.split for j in plan_jobs(SynthSettings(num_scenes=1))] == ["train"]
    assert sorted(j.split for j in plan_jobs(SynthSettings(num_scenes=2))) == ["test", "test_novel_view", "train"]


def test_cli_with_layouts_file_renders_those_rooms(tmp_path, capsys):
    layouts = [generate_layout(f"myroom{i}", np.random.default_rng(40 + i)) for i in range(2)]
    path = tmp_path / "layouts.json"
    path.write_text(json.dumps(layouts_to_meta_info(layouts)))
    out = tmp_path / "ds"
    rc = cli_main(
        [
            "synth",
            "--out",
            str(out),
            "--layouts",
            str(path),
            "--frames",
            "3",
            "--size",
            "32x24",
            "--situations",
            "1",
            "--vsi-per-type",
            "1",
            "--quiet",
        ]
    )
    assert rc == 0
    assert "3 scans (train 1, val 0, test 1, test_novel_view 1)" in capsys.readouterr().out
    index = read_index(out)
    assert {v["room_id"] for v in index["scenes"].values()} == {"myroom0", "myroom1"}
    for scene, info in index["scenes"].items():
        meta = json.loads((out / "scans" / scene / "meta_info.json").read_text())[scene]
        src = layouts_to_meta_info(layouts)[info["room_id"]]
        assert meta["object_counts"] == src["object_counts"]
        for cat, boxes in src["object_bbox"].items():
            for a, b in zip(meta["object_bbox"][cat], boxes, strict=True):
                assert a["instance_id"] == b["instance_id"] and a["color_name"] == b["color_name"]
                for key in ("centroid", "axesLengths", "normalizedAxes", "min", "max"):
                    np.testing.assert_allclose(a[key], b[key], atol=1e-5)
        ids = {b["instance_id"] for boxes in meta["object_bbox"].values() for b in boxes}
        seen = set()
        for p in (out / "scans" / scene / "instance").glob("*.png"):
            seen |= set(np.unique(np.asarray(Image.open(p))).tolist())
        assert seen - {0} <= ids
        assert np.asarray(Image.open(out / "scans" / scene / "color" / "0.jpg")).shape == (24, 32, 3)


def test_cli_bad_layouts_file_names_scene_and_object(tmp_path, capsys):
    entry = layouts_to_meta_info([generate_layout("r", np.random.default_rng(1))])["r"]
    cat = next(iter(entry["object_bbox"]))
    entry["object_bbox"][cat][0]["axesLengths"][1] = float("nan")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"kitchen_7": entry}))
    rc = cli_main(["synth", "--out", str(tmp_path / "ds"), "--layouts", str(path), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "kitchen_7" in err and f"object {cat!r}[0]" in err and "axesLengths" in err and "non-finite" in err
    assert not (tmp_path / "ds" / "scans").exists()


def test_failing_scan_is_reported_and_others_written(tmp_path):
    good = generate_layout("ok", np.random.default_rng(3))
    # a room filled by one wardrobe-sized box: no free space for a camera
    full = generate_layout("full", np.random.default_rng(4))
    entry = layouts_to_meta_info([good, full])
    poly = np.asarray(entry["full"]["floor_polygon"])
    lo, hi = poly.min(0), poly.max(0)
    entry["full"]["floor_polygon"] = [[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]]
    c = (lo + hi) / 2
    size = [hi[0] - lo[0] - 0.02, hi[1] - lo[1] - 0.02, 2.0]  # too tall for the camera to pass over
    entry["full"]["object_bbox"] = {
        "box": [
            {
                "centroid": [c[0], c[1], 1.0],
                "axesLengths": size,
                "normalizedAxes": [1, 0, 0, 0, 1, 0, 0, 0, 1],
                "instance_id": 1,
            }
        ]
    }
    entry["full"]["object_counts"] = {"box": 1}
    path = tmp_path / "layouts.json"
    path.write_text(json.dumps(entry))
    settings = SynthSettings(
        num_scenes=None,
        layouts_file=str(path),
        frames=2,
        width=16,
        height=16,
        situations_per_scene=1,
        vsi_questions_per_type=1,
        test_fraction=0.0,
        val_fraction=0.0,
    )
    summary = generate_dataset(tmp_path / "ds", settings, progress=False)
    assert list(summary.failed) == ["full_00"] and "free space" in summary.failed["full_00"]
    assert summary.written == ["ok_00"]
    index = read_index(tmp_path / "ds")
    assert not index["complete"] and "full_00" in index["failed"] and index["splits"]["train"] == ["ok_00"]
