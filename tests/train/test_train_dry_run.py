"""``loc3r train --dry-run`` and the real backbone configs: parameter counts of the public architectures (built on
the meta device), the memory table of the single-GPU recipes, ``init: random``, bad backbone configs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
from loc3r.model.tokenizer import build_tiny_tokenizer
from loc3r.train.config import load_config
from loc3r.train.memory import build_meta_model, estimate_training_memory

ROOT = Path(__file__).resolve().parents[2]
BACKBONES = ROOT / "configs" / "backbones"

# published sizes (billions of parameters) of the checkpoints whose config.json is in configs/backbones
PUBLISHED = {
    "qwen2_5_vl_7b": 8.29,
    "qwen2_5_vl_3b": 3.75,
    "qwen3_vl_8b": 8.77,
    "qwen3_vl_2b": 2.13,
    "llava_video_7b_qwen2": 8.03,
    "llava_onevision_0_5b": 0.89,
    "smolvlm2_500m": 0.51,
    "smolvlm2_2_2b": 2.25,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_real_configs_build_to_the_published_size(name):
    backbone, _ = Loc3rForConditionalGeneration.load_backbone_config(BACKBONES / name)
    tok = build_tiny_tokenizer(["count"], 300, backbone)
    with torch.device("meta"):
        model = Loc3rForConditionalGeneration.from_backbone_config(
            BACKBONES / name, tok, dtype=torch.bfloat16, layout_objective=False, situation_objective=False
        )
    count = sum(p.numel() for p in model.parameters()) / 1e9
    assert abs(count - PUBLISHED[name]) / PUBLISHED[name] < 0.01, count


def _run_cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    from loc3r.cli import main

    monkeypatch.chdir(ROOT)
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dry_run_prints_the_memory_table_of_a_single_gpu_recipe(capsys, monkeypatch):
    recipe = "configs/single_gpu/qwen3_vl_2b_lora.yaml"
    code, out, err = _run_cli(
        capsys,
        monkeypatch,
        "train",
        recipe,
        "--dry-run",
        "--set",
        "model.init=random",
        "--set",
        "model.config_file=configs/backbones/qwen3_vl_2b",
    )
    assert code == 0, err
    assert "32 frames at 384x384 -> 2304 vision tokens" in out  # 16 groups x (384 / 32)^2
    rows = dict(re.findall(r"^\s+(weights|total|optimizer \(AdamW\))\s+([\d.]+) GiB", out, flags=re.M))
    assert float(rows["weights"]) == pytest.approx(2140.2e6 * 2 / 1024**3, rel=0.01)  # bf16 weights
    assert float(rows["optimizer (AdamW)"]) < 1.0 < float(rows["total"])  # LoRA: few trained parameters


def test_every_single_gpu_recipe_loads():
    for path in sorted((ROOT / "configs" / "single_gpu").glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.data.num_frames == 32 and cfg.model.gradient_checkpointing


def test_full_vs_lora_and_checkpointing_change_the_estimate():
    cfg = load_config(
        ROOT / "configs/single_gpu/smolvlm2_500m_full.yaml",
        ["model.init=random", "model.config_file=configs/backbones/smolvlm2_500m"],
    )
    model = build_meta_model(cfg)
    common = dict(weight_dtype=torch.bfloat16, mixed_precision="bf16", frames=32, image_size=384)
    full = estimate_training_memory(
        model, finetune="full", freeze_vision_tower=True, gradient_checkpointing=True, **common
    )
    lora = estimate_training_memory(
        model, finetune="lora", freeze_vision_tower=True, gradient_checkpointing=True, lora_targets=["q_proj"], **common
    )
    no_ckpt = estimate_training_memory(
        model, finetune="full", freeze_vision_tower=True, gradient_checkpointing=False, **common
    )
    assert full.vision_tokens == 32 * 64  # 512 px / 16 = 32 patches -> pixel shuffle 4 -> 8 x 8
    assert full.trainable == sum(full.params.values()) - full.params["vision"]
    assert lora.trainable < full.trainable / 10
    assert no_ckpt.bytes["activations (LLM)"] > 5 * full.bytes["activations (LLM)"]


def test_bad_backbone_configs_name_file_and_field(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "other"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "blip_2"}))
    with pytest.raises(ValueError, match=r"other/config.json: field 'model_type' is 'blip_2'"):
        Loc3rForConditionalGeneration.load_backbone_config(bad)
    with pytest.raises(FileNotFoundError, match="backbone config not found"):
        Loc3rForConditionalGeneration.load_backbone_config(tmp_path / "missing")
    code, _, err = _run_cli(
        capsys, monkeypatch, "train", "configs/single_gpu/qwen3_vl_2b_full.yaml", "--dry-run", "--set=model.init=random"
    )
    assert code == 2 and err.startswith("loc3r train: error:") and "config_file" in err


@pytest.mark.parametrize(("size", "params_b"), [("3b", 3.75), ("7b", 8.29)])
def test_single_gpu_lora_recipes_for_3b_and_7b_fit_one_80gb_card(capsys, monkeypatch, size, params_b):
    """Issue 22: LoRA + gradient checkpointing with fp32 master weights (not pure bf16), sized for one 80 GB card."""
    recipe = f"configs/single_gpu/qwen2_5_vl_{size}_lora.yaml"
    code, out, err = _run_cli(capsys, monkeypatch, "train", recipe, "--dry-run", "--set", "model.init=random",
                              "--set", f"model.config_file=configs/backbones/qwen2_5_vl_{size}")  # fmt: skip
    assert code == 0, err
    assert "finetune=lora, weights float32, mixed_precision=bf16, gradient_checkpointing=True" in out
    rows = dict(re.findall(r"^\s+(weights|total|optimizer \(AdamW\))\s+([\d.]+) GiB", out, flags=re.M))
    assert float(rows["weights"]) == pytest.approx(params_b * 1e9 * 4 / 1024**3, rel=0.02)  # fp32 master weights
    assert 0.3 * 80 < float(rows["total"]) < 0.6 * 80  # uses the card, with room for CUDA context / fragmentation
    cfg = load_config(ROOT / recipe)
    assert cfg.train.batch_size * cfg.train.grad_accum == 64 and cfg.model.finetune == "lora"
