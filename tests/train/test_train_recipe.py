"""End-to-end tests of the training recipe, in process, on a tiny generated SynthRooms set (8 frames, 64x64)
and tiny random models: logging of every term, checkpoints, exact resume, config-mismatch errors,
non-finite steps, LoRA + gradient checkpointing, both backbones."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from loc3r.synthrooms.writer import SynthSettings, generate_dataset
from loc3r.train.checkpointing import CheckpointError, list_checkpoints
from loc3r.train.config import RecipeConfig, apply_overrides, config_from_dict
from loc3r.train.recipe import NonFiniteLossError, train

TERMS = ("loss", "loss_ce", "loss_bev", "loss_pos", "loss_ori", "loss_sit")


def make_synth(root: Path) -> Path:
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


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synth(tmp_path_factory.mktemp("synth"))


def tiny_recipe(synth_root: Path, out: Path, overrides: list[str] | None = None, **top: Any) -> RecipeConfig:
    raw: dict[str, Any] = {
        "seed": 0,
        "output_dir": str(out),
        "model": {"backbone": "qwen2_5_vl", "init": "tiny", "tiny": {"vocab_size": 400}, "freeze_vision_tower": False},
        "data": {
            "train": [{"kind": "synth", "root": str(synth_root), "split": "train"}],
            "val": [{"kind": "synth", "root": str(synth_root), "split": "test"}],
            "num_frames": 8,
        },
        "optim": {"lr": 2e-3, "warmup_steps": 3, "weight_decay": 0.01, "min_lr_ratio": 0.1},
        "train": {"max_steps": 6, "batch_size": 2, "log_every": 1, "progress_bar": False},
        **top,
    }
    return config_from_dict(apply_overrides(raw, overrides or []))


def read_metrics(out: Path) -> list[dict[str, float]]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        row.pop("train/samples_per_s", None)  # wall-clock, not part of the curve
    return rows


def test_tiny_run_logs_every_term_checkpoints_and_final_model(synth_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = tiny_recipe(synth_root, out, ["train.eval_every=3", "train.save_every=3", "train.keep_last=1"])
    result = train(cfg)
    assert result.step == 6 and result.nonfinite_steps == 0 and result.in_sync is True
    rows = read_metrics(out)
    train_rows = [r for r in rows if "train/loss" in r]
    val_rows = [r for r in rows if "val/loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in val_rows] == [3, 6]
    for row in train_rows:
        for term in TERMS:
            assert math.isfinite(row[f"train/{term}"])
    for term in ("loss", "loss_ce", "loss_bev", "loss_pos", "loss_ori"):
        assert math.isfinite(val_rows[-1][f"val/{term}"])
    # cosine with linear warm-up: lr(t) = lr * t / 3 for t < 3, the value used at step t+1
    lrs = [r["train/lr"] for r in train_rows]
    assert lrs[:3] == pytest.approx([0.0, 2e-3 / 3, 4e-3 / 3])
    assert lrs[3] == pytest.approx(2e-3) and lrs[5] < lrs[4] < lrs[3]
    # TensorBoard got every term on its own
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {f"train/{t}" for t in TERMS} | {"train/lr", "train/grad_norm", "val/loss_bev"} <= tags
    # keep_last=1: only the newest complete checkpoint remains
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [6]
    ckpt = out / "checkpoints" / "step-00000006"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["samples_seen"] == 12
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "rng_state_0.safetensors").is_file()
    assert (ckpt / "tokenizer" / "tokenizer.json").is_file()  # the trained tiny tokenizer travels with it
    # final/ loads strictly with the model class and its processor, and computes a finite loss
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    model = Loc3rForConditionalGeneration.from_pretrained(out / "final")
    from loc3r.train.builders import build_datasets

    train_set, _ = build_datasets(cfg)
    batch = model.build_processor(mode="train")([train_set[0], train_set[1]])
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)
    assert (out / "config.yaml").is_file() and (out / "train.log").is_file()


def test_resume_continues_exactly(synth_root: Path, tmp_path: Path) -> None:
    """Checkpoint at step 4, later progress thrown away (as by a crash), resume: same curve bit for bit."""
    opts = ["train.max_steps=8", "train.save_every=4", "train.eval_every=4", "train.keep_last=5"]
    straight = tmp_path / "straight"
    train(tiny_recipe(synth_root, straight, opts))
    crashed = tmp_path / "crashed"
    train(tiny_recipe(synth_root, crashed, opts))
    import shutil

    shutil.rmtree(crashed / "checkpoints" / "step-00000008")  # "crash" after step 8's metrics, before its save
    shutil.rmtree(crashed / "final")
    result = train(tiny_recipe(synth_root, crashed, opts), resume=True)
    assert result.step == 8
    assert read_metrics(crashed) == read_metrics(straight)
    a = load_file(str(straight / "final" / "model.safetensors"))
    b = load_file(str(crashed / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_existing_run_and_config_mismatch_are_clear_errors(synth_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny_recipe(synth_root, out, ["train.max_steps=2"]))
    with pytest.raises(CheckpointError, match="--resume"):
        train(tiny_recipe(synth_root, out, ["train.max_steps=2"]))
    with pytest.raises(CheckpointError) as err:
        train(
            tiny_recipe(synth_root, out, ["train.max_steps=4", "optim.lr=0.5", "model.tiny.vocab_size=300"]),
            resume=True,
        )
    assert "optim.lr" in str(err.value) and "model.tiny.vocab_size" in str(err.value)
    assert "train.max_steps: checkpoint" not in str(err.value)  # may change on resume
    # the CLI prints the same error and exits 2
    from loc3r.cli import main

    recipe = tmp_path / "recipe.yaml"
    import yaml

    recipe.write_text(yaml.safe_dump(tiny_recipe(synth_root, out).model_dump(mode="json")))
    assert main(["train", str(recipe), "--resume", "--set", "optim.lr=0.5"]) == 2


def test_nonfinite_steps_are_skipped_counted_and_stop_the_run(
    synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    original = Loc3rForConditionalGeneration.forward
    calls = {"n": 0}

    def poisoned(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(self, *args, **kwargs)
        if self.training:
            calls["n"] += 1
            if calls["n"] in (2, 4):  # training steps 2 and 4 get a NaN loss
                out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(Loc3rForConditionalGeneration, "forward", poisoned)
    out = tmp_path / "run"
    cfg = tiny_recipe(synth_root, out, ["train.save_every=1", "train.keep_last=10", "train.max_nonfinite_steps=1"])
    with pytest.raises(NonFiniteLossError, match="max_nonfinite_steps"):
        train(cfg)
    rows = {r["step"]: r for r in read_metrics(out) if "train/loss" in r}
    assert [rows[s]["train/skipped"] for s in (1, 2, 3, 4)] == [0.0, 1.0, 0.0, 1.0]
    assert rows[4]["train/nonfinite_steps"] == 2.0
    # a skipped step leaves the weights untouched; a normal step changes them; the stop wrote a checkpoint
    weights = {s: load_file(str(p / "model.safetensors")) for s, p in list_checkpoints(out / "checkpoints")}
    assert sorted(weights) == [1, 2, 3, 4]
    assert all(torch.equal(weights[1][k], weights[2][k]) for k in weights[1])
    assert any(not torch.equal(weights[2][k], weights[3][k]) for k in weights[2])
    assert all(torch.isfinite(t).all() for t in weights[4].values())


def test_lora_with_gradient_checkpointing_and_frozen_vision(synth_root: Path, tmp_path: Path) -> None:
    from loc3r.train import builders

    cfg = tiny_recipe(
        synth_root,
        tmp_path / "lora",
        [
            "model.finetune=lora",
            "model.lora.r=4",
            "model.gradient_checkpointing=true",
            "model.freeze_vision_tower=true",
        ],
    )
    _, model = builders.build_tokenizer_and_model(cfg.model, ["I am standing in the room.", "what is left"], seed=0)
    peft_model = builders.apply_finetuning(model, cfg.model)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in trainable) and any("trainable_tokens" in n for n in trainable)
    assert any("layout_head" in n for n in trainable) and any("position_head" in n for n in trainable)
    assert not any(".visual.blocks" in n for n in trainable)  # vision tower frozen, never adapted
    assert all(".language_model." in n for n in trainable if "lora_" in n)
    flag = "is_activation_checkpointing" if hasattr(type(model), "is_activation_checkpointing") else None
    assert getattr(model, flag or "is_gradient_checkpointing")
    result = train(cfg)
    assert result.step == 6 and math.isfinite(result.last_train["train/loss"])
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    merged = Loc3rForConditionalGeneration.from_pretrained(result.final_dir)  # LoRA merged, strict keys
    assert not any("lora" in n for n, _ in merged.named_parameters())


def test_llava_onevision_backbone_with_grad_accum(synth_root: Path, tmp_path: Path) -> None:
    cfg = tiny_recipe(
        synth_root,
        tmp_path / "llava",
        ["model.backbone=llava_onevision", "train.max_steps=2", "train.grad_accum=2", "train.batch_size=1"],
    )
    result = train(cfg)
    assert result.step == 2
    state = json.loads((tmp_path / "llava" / "checkpoints" / "step-00000002" / "trainer_state.json").read_text())
    assert state["samples_seen"] == 4 and state["batch_in_epoch"] == 4  # 2 steps x 2 micro-batches


def test_unknown_dataset_option_names_it(synth_root: Path, tmp_path: Path) -> None:
    from loc3r.data.schema import SampleError

    cfg = tiny_recipe(synth_root, tmp_path / "x", ["data.train.0.options={taskz: [vsi]}"])
    with pytest.raises(SampleError, match="taskz"):
        train(cfg)


def test_pretrained_local_checkpoint_with_lora(synth_root: Path, tmp_path: Path) -> None:
    """``model.init = pretrained``: a local HF checkpoint directory (here a tiny Qwen2.5-VL saved with
    ``save_pretrained`` + its tokenizer and a preprocessor config, i.e. the files of a real checkpoint)."""
    import json as _json

    from loc3r.model.backbones import get_backbone
    from loc3r.model.tokenizer import build_tiny_tokenizer, special_token_ids
    from loc3r.train import builders

    local = tmp_path / "qwen_checkpoint"
    texts = ["I am standing in the room.", "how many chairs are on my left?"]
    tokenizer = build_tiny_tokenizer(texts, 400, "qwen2_5_vl")
    adapter = get_backbone("qwen2_5_vl")
    vlm = adapter.hf_model_class._from_config(
        adapter.tiny_config(len(tokenizer), special_token_ids(tokenizer, "qwen2_5_vl"))
    )
    vlm.save_pretrained(local)
    tokenizer.save_pretrained(local)
    (local / "preprocessor_config.json").write_text(_json.dumps({"min_pixels": 28 * 28, "max_pixels": 16 * 28 * 28}))
    overrides = [
        "model.init=pretrained",
        f"model.pretrained_dir={local}",
        "model.freeze_vision_tower=true",
        "model.finetune=lora",
        "model.lora.r=2",
        "train.max_steps=2",
    ]
    cfg = tiny_recipe(synth_root, tmp_path / "run", overrides)
    _, model = builders.build_tokenizer_and_model(cfg.model, None)
    impls = builders.attention_implementations(model)
    assert impls and set(impls.values()) == {"sdpa"}, impls  # backbone sub-configs included, none left unset
    result = train(cfg)
    assert result.step == 2 and math.isfinite(result.last_train["train/loss"])
