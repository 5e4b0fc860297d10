"""Every YAML under configs/ validates through its typed schema (unknown keys fail), and the paper recipes
say what the paper did (DESIGN.md §2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO
from loc3r.evaluate.tasks import load_eval_config
from loc3r.train.config import ConfigError, load_config

CONFIGS = REPO / "configs"
ALL_YAML = sorted(p for p in CONFIGS.rglob("*.yaml"))


def _kind(path: Path) -> str:
    rel = path.relative_to(CONFIGS).parts
    if rel[0] == "accelerate":
        return "accelerate"
    if "eval" in rel[:-1]:
        return "eval"
    return "recipe"


def _load(path: Path, kind: str | None = None) -> object:
    kind = kind or _kind(path)
    if kind == "accelerate":
        from accelerate.commands.config.config_args import load_config_from_file

        return load_config_from_file(str(path))
    if kind == "eval":
        return load_eval_config(path)
    cfg = load_config(path)
    from loc3r.model.configuration_loc3r import Loc3rConfig

    Loc3rConfig(backbone=cfg.model.backbone, **cfg.model.loc3r)  # model.loc3r keys checked by the model code
    return cfg


def test_configs_found() -> None:
    kinds = {_kind(p) for p in ALL_YAML}
    assert {"accelerate", "eval", "recipe"} <= kinds
    assert (CONFIGS / "paper" / "llava_video_7b.yaml") in ALL_YAML
    assert (CONFIGS / "paper" / "qwen2_5_vl_7b.yaml") in ALL_YAML


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_config_validates(path: Path) -> None:
    assert _load(path) is not None


@pytest.mark.parametrize(
    "path", [p for p in ALL_YAML if _kind(p) != "accelerate"], ids=lambda p: str(p.relative_to(CONFIGS))
)
def test_unknown_key_fails(path: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    raw["data"]["num_framez"] = 32  # a typo inside a section
    bad = tmp_path / path.name
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="num_framez"):
        _load(bad, _kind(path))


@pytest.mark.parametrize("name", ["llava_video_7b", "qwen2_5_vl_7b"])
def test_paper_recipe_matches_the_paper(name: str) -> None:
    cfg = load_config(CONFIGS / "paper" / f"{name}.yaml")
    assert cfg.model.init == "pretrained" and cfg.model.finetune == "full"
    assert cfg.model.freeze_vision_tower and cfg.model.gradient_checkpointing
    loc3r = cfg.model.loc3r
    assert (loc3r["bev_loss_weight"], loc3r["situation_loss_weight"], loc3r["orientation_loss_weight"]) == (
        0.05,
        0.075,
        3.5,
    )
    assert cfg.data.num_frames == 32
    assert cfg.optim.lr == 1e-5 and cfg.train.mixed_precision == "bf16"
    # global batch 64 on the 8 processes of configs/accelerate/zero3.yaml / fsdp.yaml
    accel = yaml.safe_load((CONFIGS / "accelerate" / "zero3.yaml").read_text())
    assert cfg.train.batch_size * cfg.train.grad_accum * accel["num_processes"] == 64
    # one epoch of the paper's mix
    weights = {(s.kind, str(s.root)): s.weight for s in cfg.data.train}
    assert sum(weights.values()) == cfg.data.samples_per_epoch == 272566
    assert cfg.train.max_steps == cfg.data.samples_per_epoch // 64
    assert {s.kind for s in cfg.data.train} == {"scanqa", "sqa3d", "msqa", "vsibench"}
    assert all("cache" in s.options for s in cfg.data.train)


def test_eval_prompts_pinned() -> None:
    vsi = load_eval_config(CONFIGS / "paper" / "eval" / "vsibench.yaml")
    assert vsi.prompt.multiple_choice_suffix and vsi.prompt.numerical_suffix
    assert not vsi.generation.do_sample
    for name in ("sqa3d", "scanqa"):
        assert load_eval_config(CONFIGS / "paper" / "eval" / f"{name}.yaml").prompt.suffix
