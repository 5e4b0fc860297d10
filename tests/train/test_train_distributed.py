"""Subprocess tests of the training CLI: a run killed with SIGKILL and resumed logs the same loss curve as an
uninterrupted run, and two gloo processes (torchrun) stay in sync on different data shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from loc3r.synthrooms.writer import SynthSettings, generate_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(
        root,
        SynthSettings(
            num_scenes=5,
            frames=8,
            width=64,
            height=64,
            val_fraction=0.2,
            test_fraction=0.2,
            novel_view=False,
            situations_per_scene=3,
            questions_per_situation=2,
            vsi_questions_per_type=1,
            write_video=False,
        ),
        progress=False,
    )
    return root


def write_recipe(path: Path, synth_root: Path, out: Path, **train: Any) -> Path:
    recipe = {
        "seed": 1,
        "output_dir": str(out),
        "model": {"backbone": "qwen2_5_vl", "init": "tiny", "tiny": {"vocab_size": 400}, "freeze_vision_tower": False},
        "data": {
            "train": [{"kind": "synth", "root": str(synth_root), "split": "train"}],
            "val": [{"kind": "synth", "root": str(synth_root), "split": "test"}],
            "num_frames": 8,
        },
        "optim": {"lr": 2e-3, "warmup_steps": 8, "weight_decay": 0.01, "min_lr_ratio": 0.1},
        "train": {"batch_size": 2, "log_every": 1, "progress_bar": False, **train},
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "loc3r.cli", "train", *args]


def curve(out: Path) -> list[dict[str, float]]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        row.pop("train/samples_per_s", None)
    return rows


def test_sigkill_then_resume_reaches_the_same_loss_curve(synth_root: Path, tmp_path: Path) -> None:
    settings = {"max_steps": 16, "save_every": 4, "eval_every": 4, "keep_last": 2}
    straight_out, killed_out = tmp_path / "straight", tmp_path / "killed"
    straight = write_recipe(tmp_path / "straight.yaml", synth_root, straight_out, **settings)
    killed = write_recipe(tmp_path / "killed.yaml", synth_root, killed_out, **settings)
    subprocess.run(cli(str(straight)), check=True, capture_output=True, timeout=300)

    proc = subprocess.Popen(cli(str(killed)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = killed_out / "checkpoints" / "step-00000004" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed_out / "final").exists()
    logged = [r["step"] for r in curve(killed_out) if "train/loss" in r]
    assert 4 <= max(logged) < 16

    subprocess.run(cli(str(killed), "--resume"), check=True, capture_output=True, timeout=300)
    a, b = curve(straight_out), curve(killed_out)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    assert a == b  # bitwise: every loss term, lr, grad norm and validation loss of all 16 steps
    assert not list((killed_out / "checkpoints").glob(".tmp-*"))


def test_two_gloo_processes_stay_in_sync_on_different_shards(synth_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    recipe = write_recipe(
        tmp_path / "ddp.yaml", synth_root, out, max_steps=6, eval_every=3, save_every=3, log_rank_samples=True
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "loc3r.cli",
        "train",
        str(recipe),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "2 process(es), distributed=MULTI_CPU" in done.stderr
    sync = json.loads((out / "sync_check.json").read_text())
    assert sync["num_processes"] == 2 and sync["in_sync"] is True
    assert sync["digests"][0] == sync["digests"][1]  # identical parameters after 6 steps
    ranks = [
        [json.loads(line) for line in (out / "ranks" / f"rank{r}.jsonl").read_text().splitlines()] for r in range(2)
    ]
    metrics = {r["step"]: r for r in curve(out) if "train/loss" in r}
    seen: set[str] = set()
    for step in range(1, 7):
        r0, r1 = ranks[0][step - 1], ranks[1][step - 1]
        assert r0["step"] == r1["step"] == step
        assert not set(r0["samples"]) & set(r1["samples"])  # different shards
        seen |= set(r0["samples"]) | set(r1["samples"])
        # the logged loss is the mean over processes of their local losses
        assert metrics[step]["train/loss"] == pytest.approx((r0["local_loss"] + r1["local_loss"]) / 2, abs=1e-6)
    assert len(seen) == 24  # 6 steps x 2 processes x 2 samples, no sample twice within the epoch
    ckpt = out / "checkpoints" / "step-00000006"
    assert (ckpt / "rng_state_0.safetensors").is_file() and (ckpt / "rng_state_1.safetensors").is_file()
