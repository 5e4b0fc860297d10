"""Recipe config, RNG capture, checkpoint directory handling (no model); the mixture samplers are tested in
tests/data/test_mixture.py."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from loc3r.train.checkpointing import (
    TrainerState,
    cleanup_partial,
    latest_checkpoint,
    list_checkpoints,
    load_rng_state,
    save_rng_state,
)
from loc3r.train.config import ConfigError, config_from_dict, diff_configs, dump_config, load_config

MINIMAL = """
seed: 3
output_dir: runs/x
data:
  train:
    - {kind: synth, root: data/synth, split: train}
train:
  max_steps: 5
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_load_minimal_and_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, MINIMAL))
    assert cfg.seed == 3 and cfg.train.max_steps == 5
    assert cfg.model.finetune == "full" and cfg.model.freeze_vision_tower
    assert cfg.data.train[0].weight == 1.0


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "optim:\n  lr_warmup: 10\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "optim.lr_warmup" in str(err.value) and str(path) in str(err.value)


def test_unknown_nested_dataset_key(tmp_path: Path) -> None:
    text = MINIMAL.replace("split: train}", "split: train, wieght: 2}")
    with pytest.raises(ConfigError, match=r"data\.train\.0\.wieght"):
        load_config(_write(tmp_path, text))


def test_overrides_typed_and_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL)
    cfg = load_config(path, ["optim.lr=3e-4", "train.max_steps=7", "model.finetune=lora", "model.lora.r=4"])
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.train.max_steps == 7
    assert cfg.model.finetune == "lora" and cfg.model.lora.r == 4
    with pytest.raises(ConfigError, match="train.max_stepz"):
        load_config(path, ["train.max_stepz=7"])
    with pytest.raises(ConfigError, match="train.max_steps"):
        load_config(path, ["train.max_steps=-1"])
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(path, ["train.max_steps"])


def test_pretrained_needs_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pretrained_dir"):
        load_config(_write(tmp_path, MINIMAL + "model:\n  init: pretrained\n"))


def test_dump_roundtrip_and_diff(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, MINIMAL))
    import yaml

    again = config_from_dict(yaml.safe_load(dump_config(cfg)))
    assert again == cfg
    a = cfg.model_dump(mode="json")
    b = load_config(_write(tmp_path, MINIMAL), ["train.max_steps=50", "optim.lr=1.0"]).model_dump(mode="json")
    diffs = diff_configs(a, b)
    assert len(diffs) == 1 and diffs[0].startswith("optim.lr")  # max_steps may change on resume


def test_rng_state_roundtrip(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.random(), np.random.randn(), torch.randn(2)
    save_rng_state(tmp_path / "rng.safetensors")
    expected = (random.random(), float(np.random.randn()), torch.randn(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    load_rng_state(tmp_path / "rng.safetensors")
    got = (random.random(), float(np.random.randn()), torch.randn(3))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_checkpoint_listing_ignores_partial(tmp_path: Path) -> None:
    for step in (4, 12):
        d = tmp_path / f"step-{step:08d}"
        d.mkdir()
        (d / "trainer_state.json").write_text(TrainerState(step=step).to_json())
    (tmp_path / ".tmp-step-00000016").mkdir()  # killed mid-save
    (tmp_path / "step-00000020").mkdir()  # no trainer_state.json -> not complete
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4, 12]
    assert latest_checkpoint(tmp_path).name == "step-00000012"
    assert [p.name for p in cleanup_partial(tmp_path)] == [".tmp-step-00000016"]


@pytest.mark.parametrize("name", ["ddp", "fsdp", "zero2", "zero3"])
def test_shipped_accelerate_configs_parse(name: str) -> None:
    """The example launcher configs load with Accelerate's own config reader (no unknown keys)."""
    from accelerate.commands.config.config_args import load_config_from_file

    root = REPO / "configs" / "accelerate"
    cfg = load_config_from_file(str(root / f"{name}.yaml"))
    expected = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED"}[name]
    assert cfg.distributed_type.value == expected
    if name.startswith("zero"):
        assert cfg.deepspeed_config["zero_stage"] == int(name[-1])


def test_shipped_tiny_recipe_validates() -> None:
    root = REPO
    cfg = load_config(root / "configs" / "train_tiny.yaml", ["data.train.0.root=/elsewhere"])
    assert cfg.model.init == "tiny" and str(cfg.data.train[0].root) == "/elsewhere"
