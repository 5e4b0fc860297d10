"""Strict ``model.tiny`` / ``model.loc3r`` at load time (issue 11 part 4), resume past a damaged newest
checkpoint (part 6), and train's user errors as one line on stderr with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_RECIPE = str(Path(__file__).resolve().parents[2] / "configs" / "train_tiny.yaml")


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
        load_config(TINY_RECIPE, [override])


def test_valid_tiny_sizes_still_load() -> None:
    from loc3r.train.config import load_config

    cfg = load_config(TINY_RECIPE, ["model.tiny.text_config={hidden_size: 32, num_attention_heads: 2}"])
    assert cfg.model.tiny["text_config"]["hidden_size"] == 32


# ------------------------------------------------------------------------------------------------ resume


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


# ------------------------------------------------------------------------------------------------ train CLI


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

    code = main(["train", TINY_RECIPE, "--set", f"output_dir={tmp_path / 'run'}", "--set", override,
                 "--set", "data.val=[]"])  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("loc3r train")]
    assert code == 2 and len(err) == 1 and named in err[0] and "Traceback" not in capsys.readouterr().err
