"""Issue 22 (resume under real use): a checkpoint whose weights hold NaN is refused naming it (it used to train on
and write a NaN final model, exit 0); an ``optimizer.bin`` holding pickled objects other than tensors is never
unpickled — the run resumes with a fresh optimizer and a warning instead of a traceback."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from loc3r.synthrooms.writer import SynthSettings, generate_dataset
from loc3r.train.checkpointing import CheckpointError
from loc3r.train.config import apply_overrides, config_from_dict
from loc3r.train.recipe import train


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    settings = SynthSettings(
        num_scenes=3, frames=8, width=64, height=64, val_fraction=0.0, test_fraction=0.34, novel_view=False,
        situations_per_scene=2, questions_per_situation=1, vsi_questions_per_type=1, write_video=False,
    )  # fmt: skip
    generate_dataset(root, settings, progress=False)
    out = tmp_path_factory.mktemp("run") / "run"
    train(_recipe(root, out, 2))
    return root, out


def _recipe(root: Path, out: Path, steps: int) -> object:
    raw = {
        "seed": 0,
        "output_dir": str(out),
        "model": {"backbone": "qwen2_5_vl", "init": "tiny", "tiny": {"vocab_size": 400}},
        "data": {"train": [{"kind": "synth", "root": str(root), "split": "train"}], "num_frames": 8},
        "optim": {"lr": 1e-3, "warmup_steps": 0},
        "train": {"max_steps": steps, "batch_size": 2, "log_every": 1, "progress_bar": False, "save_every": 2},
    }
    return config_from_dict(apply_overrides(raw, []))


def _copy(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return out, out / "checkpoints" / "step-00000002"


def test_resume_with_a_foreign_pickle_in_optimizer_bin_starts_a_fresh_optimizer(
    first_run: tuple[Path, Path], tmp_path: Path
) -> None:
    root, run = first_run
    out, ckpt = _copy(run, tmp_path)
    torch.save({"state": argparse.Namespace(evil=True), "param_groups": []}, ckpt / "optimizer.bin")
    result = train(_recipe(root, out, 3), resume=True)
    assert result.step == 3
    log = (out / "train.log").read_text()
    assert "optimizer.bin holds pickled objects other than tensors" in log and "FRESH optimizer" in log


def test_resume_from_nan_weights_is_refused(first_run: tuple[Path, Path], tmp_path: Path) -> None:
    root, run = first_run
    out, ckpt = _copy(run, tmp_path)
    weights = load_file(str(ckpt / "model.safetensors"))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="NaN/inf"):
        train(_recipe(root, out, 3), resume=True)
    assert not (out / "checkpoints" / "step-00000003").exists()
