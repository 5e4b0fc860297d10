"""Issue 22: with DataLoader worker processes (``data.num_workers >= 1``) the frames the loaders skipped still reach
the run's frame report, and ``--strict`` still stops at the first one (the batch's metadata used to be dropped when
the batch was pickled back from the worker)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from loc3r.data.schema import SampleError
from loc3r.model.processing import Loc3rBatch
from loc3r.synthrooms.writer import SynthSettings, generate_dataset
from loc3r.train.config import apply_overrides, config_from_dict
from loc3r.train.recipe import train


@pytest.fixture(scope="module")
def damaged_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    settings = SynthSettings(
        num_scenes=3, frames=8, width=64, height=64, val_fraction=0.0, test_fraction=0.34, novel_view=False,
        situations_per_scene=2, questions_per_situation=1, vsi_questions_per_type=1, write_video=False,
    )  # fmt: skip
    generate_dataset(root, settings, progress=False)
    damaged = 0
    for jpg in sorted(root.glob("scans/*/color/3.jpg")):  # frame 3 of every scan: truncated
        jpg.write_bytes(jpg.read_bytes()[:40])
        damaged += 1
    assert damaged >= 2
    return root


def _recipe(root: Path, out: Path, workers: int) -> object:
    raw = {
        "seed": 0,
        "output_dir": str(out),
        "model": {"backbone": "qwen2_5_vl", "init": "tiny", "tiny": {"vocab_size": 400}},
        "data": {"train": [{"kind": "synth", "root": str(root), "split": "train"}], "num_frames": 8},
        "optim": {"lr": 1e-3, "warmup_steps": 0},
        "train": {"max_steps": 2, "batch_size": 2, "log_every": 1, "progress_bar": False, "save_every": 0},
    }
    return config_from_dict(apply_overrides(raw, [f"data.num_workers={workers}"]))


def test_batch_metadata_survives_pickling() -> None:
    meta = {"frame_problems": [{"file": "a/3.jpg"}]}
    batch = Loc3rBatch({"input_ids": torch.ones(1, 3)}, metadata=[{"sample_id": "s0", "meta": meta}])
    back = pickle.loads(pickle.dumps(batch))
    assert back.metadata == [{"sample_id": "s0", "meta": meta}]
    assert torch.equal(back["input_ids"], batch["input_ids"])


def test_frame_report_and_strict_with_loader_workers(damaged_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(_recipe(damaged_synth, out, workers=1))
    report = json.loads((out / "frame_report.json").read_text())
    assert report["samples"] == 4 and report["samples_with_skipped_frames"] == 4
    assert report["problems"] and all(p["file"].endswith("3.jpg") for p in report["problems"])
    with pytest.raises(SampleError, match=r"--strict.*3\.jpg"):
        train(_recipe(damaged_synth, tmp_path / "strict", workers=1), strict=True)
