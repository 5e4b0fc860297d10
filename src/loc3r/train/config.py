"""Typed training configuration, loaded from YAML (torchtune style).

A recipe is one YAML file with five sections — ``model``, ``data``, ``optim``, ``train`` plus the top-level
``seed`` / ``output_dir`` — validated by pydantic models that **reject unknown keys**: a typo such as
``optim.lr_warmup`` fails with a message naming the key and the file instead of being silently ignored.
Files are read with ``yaml.safe_load`` only (never unpickled).

Command-line overrides use dotted paths: ``--set optim.lr=3e-4 --set train.max_steps=20``; the value is
parsed as YAML, so ``true``, ``1e-4``, ``[a, b]`` and ``null`` work. ``--set`` may create a key only where
the schema knows it (unknown keys get the same error as in the file).

Which fields may differ between a checkpoint and the run that resumes it is decided here
(:data:`RESUME_MUTABLE_FIELDS`): the schedule length, logging and checkpoint cadence may change; anything
that changes the model, the data order or the optimiser may not.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from loc3r.core.config import (
    ConfigError,
    StrictConfig,
    apply_overrides,
    locate_config,
    read_yaml_mapping,
    resolve_input_paths,
    validate_config,
)
from loc3r.data.spec import DatasetSpec

__all__ = ["ConfigError", "DatasetSpec", "DataConfig", "LoraSettings", "ModelConfig", "OptimConfig",
           "TrainConfig", "RecipeConfig", "RESUME_MUTABLE_FIELDS", "load_config", "config_from_dict",
           "apply_overrides", "config_to_dict", "dump_config", "diff_configs"]  # fmt: skip


class LoraSettings(StrictConfig):
    """PEFT LoRA on the language model (``model.finetune = "lora"``).

    ``target_modules`` are matched by PEFT against module names *inside the language model only*
    (the vision tower stays frozen or fully trained according to ``freeze_vision_tower``).
    The objective heads, the camera-prior / cue MLPs and the multimodal projector are always trained
    fully (``modules_to_save``), and the embedding rows of the added special tokens (``<Pos>``, ``<Ori>``)
    are trained through PEFT's ``trainable_token_indices`` so the base vocabulary stays frozen.
    """

    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


class ModelConfig(StrictConfig):
    """Which model to build and how to fine-tune it.

    ``init = "tiny"`` builds a randomly initialised tiny model of the real HF class of ``backbone``
    (tests, the CPU demo); ``init = "pretrained"`` loads ``pretrained_dir`` (a local HF checkpoint
    directory, never downloaded) with :meth:`Loc3rForConditionalGeneration.from_backbone_pretrained`;
    ``init = "random"`` builds the REAL architecture of ``config_file`` (a checkpoint's ``config.json``, e.g.
    ``configs/backbones/qwen3_vl_2b.json``) with random weights (scale checks and GPU benchmarks without
    weights; ``config_overrides`` may change it, e.g. ``{text_config: {num_hidden_layers: 2}}``).
    ``loc3r`` holds fields of the model's ``Loc3rConfig`` (loss weights, camera prior, cue injection,
    ...); ``tiny`` holds size overrides for the tiny constructor. Both are checked against the model code
    when the model is built (unknown keys are errors there). ``dtype`` is the dtype of the weights
    (``float32`` master weights with ``train.mixed_precision = bf16`` autocast is the safe default; pure
    ``bfloat16`` weights halve memory at some precision cost).
    """

    backbone: str = "qwen2_5_vl"
    init: Literal["tiny", "pretrained", "random"] = "tiny"
    pretrained_dir: Path | None = None
    config_file: Path | None = None
    config_overrides: dict[str, Any] = Field(default_factory=dict)
    tiny: dict[str, Any] = Field(default_factory=dict)
    loc3r: dict[str, Any] = Field(default_factory=dict)
    attn_implementation: str | None = "sdpa"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    finetune: Literal["full", "lora"] = "full"
    lora: LoraSettings = Field(default_factory=LoraSettings)
    freeze_vision_tower: bool = True
    gradient_checkpointing: bool = False

    @model_validator(mode="after")
    def _pretrained_needs_dir(self) -> ModelConfig:
        if self.init == "pretrained" and self.pretrained_dir is None:
            raise ValueError("model.init = 'pretrained' needs model.pretrained_dir (a local checkpoint directory)")
        if self.init == "random" and self.config_file is None:
            raise ValueError("model.init = 'random' needs model.config_file (a backbone config.json)")
        return self


class DataConfig(StrictConfig):
    """Training / validation data.

    ``num_frames`` frames are sampled uniformly over each clip (deterministically). One training
    "epoch" of the mixture has ``samples_per_epoch`` samples (default: the total size of the training
    datasets), each drawn from dataset k with probability ``weight_k / sum(weights)``; the draw is a
    pure function of ``(seed, epoch)``, which is what makes resume exact. ``max_length`` makes a longer
    sequence an error (never silently truncated); ``camera_root`` is where the ``camera_prior = "file"``
    provider reads per-frame features.
    """

    train: list[DatasetSpec]
    val: list[DatasetSpec] = Field(default_factory=list)
    num_frames: int = Field(8, gt=0)
    samples_per_epoch: int | None = Field(None, gt=0)
    max_val_samples: int | None = Field(None, gt=0)
    num_workers: int = Field(0, ge=0)
    max_length: int | None = Field(None, gt=0)
    camera_root: Path | None = None

    @field_validator("train")
    @classmethod
    def _non_empty(cls, value: list[DatasetSpec]) -> list[DatasetSpec]:
        if not value:
            raise ValueError("data.train must list at least one dataset")
        return value


class OptimConfig(StrictConfig):
    """AdamW + cosine schedule with linear warm-up (transformers' ``get_cosine_with_min_lr_schedule_with_warmup``).

    ``lr(t) = lr * t / warmup_steps`` for ``t < warmup_steps``, then
    ``lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + cos(pi * (t - w) / (T - w))))``.
    Weight decay is not applied to biases, norms and embeddings. ``head_lr`` (optional) gives the
    freshly initialised objective heads their own learning rate.
    """

    lr: float = Field(1e-5, gt=0.0)
    head_lr: float | None = Field(None, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)
    max_grad_norm: float | None = Field(1.0, gt=0.0)


class TrainConfig(StrictConfig):
    """Loop settings. One *step* is one optimizer update over ``grad_accum`` micro-batches of
    ``batch_size`` samples per process: global batch = ``batch_size * grad_accum * num_processes``."""

    max_steps: int = Field(gt=0)
    batch_size: int = Field(1, gt=0)
    grad_accum: int = Field(1, gt=0)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    log_every: int = Field(1, gt=0)
    eval_every: int = Field(0, ge=0)  # 0 = only at the end (when val data is given)
    eval_max_batches: int | None = Field(None, gt=0)
    save_every: int = Field(0, ge=0)  # 0 = only at the end
    keep_last: int = Field(2, gt=0)
    max_nonfinite_steps: int = Field(10, ge=0)
    save_final_model: bool = True
    progress_bar: bool = True
    log_rank_samples: bool = False  # per-process ranks/rank<r>.jsonl: sample ids + local loss per step (debug)
    # DDP only: needed when some trainable parameter gets no gradient in a step (costs an extra graph walk);
    # loc3r's losses keep every head in the graph, so the default is off
    ddp_find_unused_parameters: bool = False


class RecipeConfig(StrictConfig):
    """A whole training recipe."""

    seed: int = 0
    output_dir: Path
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig


# fmt: off
#: Dotted fields a resumed run may change relative to its checkpoint (they do not affect the trajectory
#: up to the checkpoint, nor the model / data order / optimiser state it restores).
RESUME_MUTABLE_FIELDS: frozenset[str] = frozenset({
    "output_dir", "train.max_steps", "train.log_every", "train.eval_every", "train.eval_max_batches",
    "train.save_every", "train.keep_last", "train.max_nonfinite_steps", "train.save_final_model", "train.progress_bar",
    "train.log_rank_samples", "data.num_workers", "data.max_val_samples", "data.val",
})
# fmt: on


def _validate(raw: Any, source: str) -> RecipeConfig:
    cfg = validate_config(RecipeConfig, raw, source, what="training config", schema="recipe", top="a recipe")
    check_model_section(cfg.model, source)
    return cfg


_TINY_OWN_KEYS = frozenset({"vocab_size"})  # read by the tiny builder itself (tokenizer size), not the HF config


def check_model_section(model: ModelConfig, source: str) -> None:
    """Check ``model.loc3r`` and ``model.tiny`` against the model code now, at load time.

    ``model.loc3r`` must build a ``Loc3rConfig`` (unknown key, negative / NaN loss weight, bad camera prior ...).
    ``model.tiny`` may hold ``vocab_size`` and keys of the backbone's tiny HF config: top-level keys of its config
    class, and ``text_config`` / ``vision_config`` mappings whose keys exist in those sub-configs. HF configs
    accept any keyword silently, so without this a typo (``hiden_size``) trained the default size. With
    ``init = "pretrained"`` the tiny section is not used and not checked.
    """
    import collections
    import math

    from loc3r.model.backbones import available_backbones, get_backbone
    from loc3r.model.configuration_loc3r import Loc3rConfig

    if model.backbone not in available_backbones():
        raise ConfigError(f"{source}: model.backbone must be one of {available_backbones()}, got {model.backbone!r}")
    try:
        Loc3rConfig(backbone=model.backbone, **model.loc3r)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source}: model.loc3r: {err}") from None
    if model.init == "pretrained":  # the tiny section is unused (a tiny recipe run with --set model.init=pretrained)
        return
    vocab = model.tiny.get("vocab_size", 512)
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 16:
        raise ConfigError(f"{source}: model.tiny.vocab_size must be an int >= 16, got {vocab!r}")
    adapter = get_backbone(model.backbone)
    ids: collections.defaultdict[str, int] = collections.defaultdict(int)
    default = adapter.tiny_config(vocab, ids)
    sub_configs = {"text_config": default.get_text_config(), "vision_config": getattr(default, "vision_config", None)}
    for key, value in model.tiny.items():
        if key in _TINY_OWN_KEYS:
            continue
        if key in sub_configs and sub_configs[key] is not None:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: model.tiny.{key} must be a mapping of {key} fields, got {value!r}")
            unknown = sorted(k for k in value if not hasattr(sub_configs[key], k))
            if unknown:
                raise ConfigError(
                    f"{source}: model.tiny.{key}: unknown key(s) {unknown} for the {model.backbone} "
                    f"{type(sub_configs[key]).__name__}"
                )
            checked = value.items()
            prefix = f"model.tiny.{key}"
        elif not hasattr(default, key):
            raise ConfigError(
                f"{source}: model.tiny: unknown key {key!r} for the {model.backbone} tiny config "
                f"({type(default).__name__}; sizes of the language model go under text_config, of the vision tower "
                "under vision_config, plus vocab_size)"
            )
        else:
            checked = [(key, value)]
            prefix = "model.tiny"
        for name, item in checked:
            if isinstance(item, bool) or not isinstance(item, int | float):
                continue
            if not math.isfinite(item) or (isinstance(item, int) and item <= 0 and name.endswith(_SIZE_SUFFIXES)):
                raise ConfigError(f"{source}: {prefix}.{name} must be a positive size, got {item!r}")
    overrides = copy.deepcopy({k: v for k, v in model.tiny.items() if k not in _TINY_OWN_KEYS})
    try:
        built = adapter.tiny_config(vocab, ids, **overrides)
    except (TypeError, ValueError, KeyError, ZeroDivisionError) as err:
        raise ConfigError(f"{source}: model.tiny: the backbone's tiny config rejects it: {err}") from None
    # attention shapes the HF config classes accept but the model cannot build (a traceback at step 0 otherwise)
    for name, sub in (
        ("text_config", built.get_text_config()),
        ("vision_config", getattr(built, "vision_config", None)),
    ):
        width = getattr(sub, "hidden_size", None)
        heads = getattr(sub, "num_attention_heads", None) or getattr(sub, "num_heads", None)
        kv_heads = getattr(sub, "num_key_value_heads", None)
        if isinstance(width, int) and isinstance(heads, int) and heads > 0 and width % heads:
            raise ConfigError(f"{source}: model.tiny.{name}: hidden_size {width} is not divisible by {heads} heads")
        if isinstance(heads, int) and isinstance(kv_heads, int) and kv_heads > 0 and heads % kv_heads:
            raise ConfigError(
                f"{source}: model.tiny.{name}: {heads} attention heads are not divisible by {kv_heads} key/value heads"
            )


_SIZE_SUFFIXES = ("_size", "_layers", "_heads", "depth", "_dim")


def load_config(path: str | Path, overrides: list[str] | None = None) -> RecipeConfig:
    """Read a YAML recipe (``yaml.safe_load``), apply ``--set`` overrides, validate.

    Relative paths are the working directory's (``output_dir`` always; like every CLI tool); an input path
    (dataset roots, ``pretrained_dir``, caches) that does not exist there but does next to the config file or in
    a folder above it (a shipped asset such as ``src/loc3r/assets/loc3r-tiny``) is taken from there, so the shipped
    recipes run from any directory (:func:`loc3r.core.config.resolve_input_paths`).
    """
    path = locate_config(path)
    raw = read_yaml_mapping(path, "recipe")
    if overrides:
        raw = apply_overrides(raw, overrides, source=f"{path} (--set)")
    return _validate(resolve_input_paths(raw, path), str(path))


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> RecipeConfig:
    """Validate an in-memory dict (tests, the demo) with the same error messages as files."""
    return _validate(raw, source)


def config_to_dict(cfg: RecipeConfig) -> dict[str, Any]:
    """Plain JSON/YAML-safe dict (paths as strings, tuples as lists)."""
    return cfg.model_dump(mode="json")


def dump_config(cfg: RecipeConfig) -> str:
    """YAML text of the resolved config (what is stored with each checkpoint)."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        if not tree and prefix:
            out[prefix] = {}
        return out
    return {prefix: tree}


def diff_configs(old: dict[str, Any], new: dict[str, Any], ignore: frozenset[str] = RESUME_MUTABLE_FIELDS) -> list[str]:
    """Dotted keys whose values differ between two config dicts, skipping ``ignore`` (and sub-keys)."""
    flat_old, flat_new = _flatten(old), _flatten(new)

    def ignored(key: str) -> bool:
        return any(key == f or key.startswith(f + ".") for f in ignore)

    keys = sorted(set(flat_old) | set(flat_new))
    return [
        f"{k}: checkpoint={flat_old.get(k, '<absent>')!r} now={flat_new.get(k, '<absent>')!r}"
        for k in keys
        if not ignored(k) and flat_old.get(k, "<absent>") != flat_new.get(k, "<absent>")
    ]
