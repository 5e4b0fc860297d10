"""Small builders the training recipe is assembled from (torchtune style: each does one thing).

* :func:`resolve_mixed_precision` / :func:`build_accelerator` — the 🤗 Accelerate engine.
* :func:`build_tokenizer_and_model` — the model of the ``model`` section, by :func:`loc3r.model.loading.build_model`
  (tiny from scratch with a tokenizer trained on the training texts, a loc3r base, a real local checkpoint).
* :func:`apply_finetuning` — frozen vision tower, full fine-tune or PEFT LoRA, gradient checkpointing.
* :func:`build_datasets` — the weighted training mixture and the validation set from the recipe.
* :func:`build_optimizer` / :func:`build_scheduler` — AdamW with decay / no-decay (and head) groups,
  cosine schedule with linear warm-up from transformers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from loc3r.train.config import DatasetSpec, ModelConfig, OptimConfig, RecipeConfig

logger = logging.getLogger("loc3r.train")


# ---------------------------------------------------------------- engine


def resolve_mixed_precision(setting: str) -> str:
    """``auto`` -> ``bf16`` on a GPU that supports it, else ``no`` (fp32; CPU autocast to bf16 is slow and
    not what CPU tests want). Explicit ``bf16``/``fp16`` on a machine without CUDA is an error, not a silent
    fall back."""
    cuda = torch.cuda.is_available()
    if setting == "auto":
        return "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
    if setting in ("bf16", "fp16") and not cuda:
        raise ValueError(f"train.mixed_precision = {setting!r} needs a CUDA device; use 'auto' or 'no' on CPU")
    return setting


def build_accelerator(cfg: RecipeConfig) -> Any:
    """The Accelerate engine: the launcher (``torchrun`` / ``accelerate launch`` + its config file) decides
    DDP / FSDP / DeepSpeed; the recipe decides precision and gradient accumulation.

    The scheduler is stepped by the recipe exactly once per optimizer step
    (``step_scheduler_with_optimizer=False``): Accelerate's default would step it ``num_processes`` times
    per step, which makes the schedule depend on the world size.
    """
    import os

    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration

    # Launched as several processes (torchrun / accelerate launch) on a machine without CUDA: Accelerate only
    # sets up gloo multi-CPU training when told cpu=True (``accelerate launch --cpu`` does it via the env).
    multi_process = int(os.environ.get("WORLD_SIZE", "1")) > 1 or "LOCAL_RANK" in os.environ
    accelerator = Accelerator(
        cpu=multi_process and not torch.cuda.is_available(),
        mixed_precision=resolve_mixed_precision(cfg.train.mixed_precision),
        gradient_accumulation_steps=cfg.train.grad_accum,
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(cfg.output_dir), logging_dir=str(cfg.output_dir)),
        step_scheduler_with_optimizer=False,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.train.ddp_find_unused_parameters)],
    )
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is not None:  # DeepSpeed needs the micro-batch size up front (we prepare no DataLoader)
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = cfg.train.batch_size
        if cfg.optim.max_grad_norm is not None:
            plugin.deepspeed_config["gradient_clipping"] = cfg.optim.max_grad_norm
    return accelerator


# ---------------------------------------------------------------- data


def build_datasets(cfg: RecipeConfig) -> tuple[Any, Dataset | None]:
    """``(train MixtureDataset, val dataset or None)``; val datasets are concatenated (unweighted)."""
    from torch.utils.data import ConcatDataset

    from loc3r.data.mixture import MixtureDataset
    from loc3r.data.registry import SubsetDataset, build_dataset

    def build(specs: list[DatasetSpec], where: str) -> list[Dataset]:
        return [build_dataset(s, num_frames=cfg.data.num_frames, source=f"{where}[{i}]") for i, s in enumerate(specs)]

    train_sets = build(cfg.data.train, "data.train")
    mixture = MixtureDataset(
        train_sets, weights=[s.weight for s in cfg.data.train], names=[f"{s.kind}:{s.split}" for s in cfg.data.train]
    )
    val: Dataset | None = None
    if cfg.data.val:
        val_sets = build(cfg.data.val, "data.val")
        val = val_sets[0] if len(val_sets) == 1 else ConcatDataset(val_sets)
        if cfg.data.max_val_samples is not None and len(val) > cfg.data.max_val_samples:
            val = SubsetDataset(val, cfg.data.max_val_samples)
    return mixture, val


def tokenizer_corpus(dataset: Dataset, limit: int = 20000) -> list[str]:
    """Texts to train a tiny tokenizer on: the pseudo-situation plus the situations, questions, answers,
    ground truths and options of the training data.

    Read from the loaders' records when every part of ``dataset`` exposes them
    (:func:`loc3r.data.mixture.dataset_records`: no frames decoded, at most ``limit`` records); otherwise from
    at most ``limit`` samples (each loaded), plus the digits and words of text coordinates. (The two paths are
    the two the trainer always had; which one a dataset takes decides its tokenizer, so both are kept as they
    were.)
    """
    from loc3r.data.mixture import dataset_records
    from loc3r.data.schema import PSEUDO_SITUATION

    records = dataset_records(dataset)
    if records is not None:
        texts: list[str] = [PSEUDO_SITUATION]
        for record in records[:limit]:
            for name in ("situation", "question", "answer", "ground_truth"):
                value = getattr(record, name, None)
                if isinstance(value, str) and value:
                    texts.append(value)
            for name in ("answers", "alternative_situations", "options"):
                value = getattr(record, name, None)
                if isinstance(value, list | tuple):
                    texts.extend(v for v in value if isinstance(v, str))
        return texts
    texts = [PSEUDO_SITUATION, "0 1 2 3 4 5 6 7 8 9 . - x y yaw position heading metres degrees"]
    texts_fn = getattr(dataset, "texts", None)
    if callable(texts_fn):  # loaders may expose texts without loading frames
        return texts + list(texts_fn())
    for i in range(min(len(dataset), limit)):
        sample = dataset[i]
        texts.extend(t for t in (sample.situation_text, sample.question, sample.answer) if t)
        texts.extend(sample.answers)
        texts.extend(sample.options or [])
    return texts


# ---------------------------------------------------------------- model


def build_tokenizer_and_model(
    cfg: ModelConfig, corpus: list[str] | None, seed: int = 0, tokenizer: Any = None
) -> tuple[Any, Any]:
    """``(tokenizer, model)`` of the recipe's ``model`` section by :func:`loc3r.model.loading.build_model` (which
    says what each ``init`` builds); a given ``tokenizer`` (tiny init only: the one saved in the checkpoint being
    resumed) is used instead of training a new one. Warns when an attention implementation stayed unset."""
    from loc3r.model.loading import build_model

    model = build_model(cfg, corpus, tokenizer=tokenizer, seed=seed)
    unset = [name for name, impl in attention_implementations(model).items() if impl in ("None", "")]
    if unset:
        logger.warning("attention implementation unset for %s: transformers may fall back to eager attention", unset)
    return model.tokenizer, model


def _qualified_names(root: nn.Module, modules: Iterable[nn.Module]) -> list[str]:
    """Names of ``modules`` inside ``root`` (by identity)."""
    wanted = {id(m) for m in modules}
    return [name for name, mod in root.named_modules() if id(mod) in wanted and name]


def lora_target_names(model: Any, short_names: list[str]) -> list[str]:
    """Fully qualified names of the ``nn.Linear`` layers of the *language model* whose last name component
    is in ``short_names`` (PEFT matches exact names, so the vision tower is never adapted by accident)."""
    lm = model.adapter.language_model(model.vlm)
    (prefix,) = _qualified_names(model, [lm])
    return [
        f"{prefix}.{name}"
        for name, mod in lm.named_modules()
        if isinstance(mod, nn.Linear) and name.split(".")[-1] in short_names
    ]


def always_trained_names(model: Any) -> list[str]:
    """Modules trained fully under LoRA: loc3r's heads, the camera prior, the cue injector, the projector."""
    ours = [m for m in model.objective_heads() if m is not model.recognition_head]
    modules = ours + list(model.adapter.projector_modules(model.vlm))
    return _qualified_names(model, modules)


def apply_finetuning(model: Any, cfg: ModelConfig) -> nn.Module:
    """Freeze the vision tower (optional), enable gradient checkpointing, wrap LoRA (PEFT) or keep full FT.

    With LoRA, PEFT adapters go on the ``target_modules`` *of the language model only*; the objective
    heads, the projector, camera-prior and cue modules are trained fully (``modules_to_save``), and only the
    embedding rows of loc3r's added special tokens (``<Pos> <Ori> <Cam>``) are trained, through PEFT's
    ``trainable_token_indices`` (the rest of the vocabulary stays frozen).
    """
    if cfg.gradient_checkpointing:
        # non-reentrant checkpointing works with frozen inputs (LoRA) and under DDP / FSDP.
        # transformers >= 5.2x names it activation_checkpointing_enable (the old name is a deprecated alias)
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if cfg.freeze_vision_tower:
        model.freeze_vision_tower()
    if cfg.finetune == "full":
        return model
    from peft import LoraConfig, get_peft_model

    targets = lora_target_names(model, cfg.lora.target_modules)
    if not targets:
        raise ValueError(
            f"model.lora.target_modules {cfg.lora.target_modules} match no linear layer of the language model"
        )
    config = model.config
    token_ids = [int(t) for t in (config.pos_token_id, config.ori_token_id, config.camera_token_id) if t is not None]
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=targets,
        modules_to_save=always_trained_names(model),
        trainable_token_indices=sorted(set(token_ids)) or None,
        bias="none",
    )
    peft_model = get_peft_model(model, lora)
    if cfg.freeze_vision_tower:
        model.freeze_vision_tower()
    return peft_model


def trainable_parameter_summary(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": int(total), "trainable": int(trainable)}


def attention_implementations(model: nn.Module) -> dict[str, str]:
    """The attention implementation each (sub-)config resolved to (``model``, ``model.vlm_config``, ...; a PEFT
    wrapper is looked through) — logged at start, because a silent fall back from flash/sdpa to eager is a classic
    cause of OOM (DESIGN.md §6). :meth:`Loc3rForConditionalGeneration.attention_implementations`, as strings."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {"model" + name[len("loc3r") :]: str(impl) for name, impl in base.attention_implementations().items()}


# ---------------------------------------------------------------- optimisation

_NO_DECAY_MARKERS = ("bias", "norm", "embed", "ln_", "layernorm")


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW over trainable parameters in up to 4 groups: {body, heads} x {decay, no decay}.

    No weight decay on biases, normalisation weights and embeddings (standard practice: decaying them
    only hurts). Heads are the modules the model reports by ``always_trained_module_names()`` patterns
    that match ``head``; they get ``head_lr`` when set.
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lname = name.lower()
        no_decay = param.ndim < 2 or any(m in lname for m in _NO_DECAY_MARKERS)
        is_head = cfg.head_lr is not None and "_head" in lname
        groups.setdefault((is_head, no_decay), []).append(param)
    if not groups:
        raise ValueError("no trainable parameters: check model.finetune / freeze settings")
    param_groups = [
        {"params": params, "weight_decay": 0.0 if no_decay else cfg.weight_decay, "lr": cfg.head_lr if head else cfg.lr}
        for (head, no_decay), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int) -> Any:
    """Linear warm-up then cosine decay to ``min_lr_ratio · lr`` at ``max_steps`` (transformers)."""
    from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup

    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=max_steps, min_lr_rate=cfg.min_lr_ratio
    )
