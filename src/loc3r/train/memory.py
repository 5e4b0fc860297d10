"""Training-memory estimate of a recipe (``loc3r train CONFIG --dry-run``): no data, no weights, no GPU.

The model is built on PyTorch's ``meta`` device (shapes only) from the recipe: the backbone's real ``config.json``
(``model.init = random`` with ``model.config_file``, or ``pretrained`` with ``model.pretrained_dir``) or the tiny
config. Parameters are counted per part; which are trained follows the recipe (full fine-tune with or without the
frozen vision tower, or LoRA on the LLM with the projector and loc3r's heads trained fully). The sequence length
comes from the backbone adapter's own preprocessing of a ``frames x image_size`` clip plus ``text_tokens``.

Per GPU (one process, no sharding), in bytes:

* weights ``P * b_w`` (``b_w``: 4 for float32, 2 for bfloat16 weights);
* gradients ``P_train * b_w`` and AdamW states ``2 * P_train * b_w`` (exp_avg, exp_avg_sq in the parameter dtype);
* activations. The LLM layer input is kept per layer ``n_layers * L * D * b_r`` with gradient checkpointing
  (``b_r`` = 4 when float32 weights run under bf16 autocast: the residual stream stays float32), plus the one layer
  recomputed in backward: ``L * (7 D + 2 D_kv + 5 I) * b_a`` (``b_a`` = 2 in bf16: norm, q/k/v, attention and
  o-projection inputs, residual; gate, up, activation, product, down input; SDPA / flash attention keep no
  ``L x L`` matrix). Without checkpointing every layer keeps the latter. The frozen vision tower saves nothing
  for backward; its largest transient (one block over all patches, ``N_p * (6 D_v + 2 I_v) * b_a``) is added.
  The LM head runs on answer tokens only and loc3r's heads on ``N_vision + 2`` rows: both are counted as
  ``L * D * b_a`` (the gathered rows and their gradient).

Not included: the CUDA context and allocator fragmentation (typically 0.5-2 GB), the data-loader's pinned memory,
DeepSpeed / FSDP sharding (divide weights, gradients and optimizer states by the number of GPUs for ZeRO-3).
``benchmarks/gpu_check.sh`` measures the real peak of the same recipes to check this estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

_BYTES = {torch.float32: 4, torch.bfloat16: 2, torch.float16: 2}
GIB = 1024**3


@dataclass
class MemoryEstimate:
    """Counts and bytes of one recipe (see the module docstring for the formulas)."""

    backbone: str
    frames: int
    image_size: int
    seq_len: int
    vision_tokens: int
    vision_patches: int
    params: dict[str, int]  # per part: vision, projector, llm, heads (loc3r), lora
    trainable: int
    bytes: dict[str, float] = field(default_factory=dict)

    @property
    def total_bytes(self) -> float:
        return float(sum(self.bytes.values()))


def sequence_length(model: Any, frames: int, image_size: int, text_tokens: int) -> tuple[int, int, int]:
    """``(L, vision tokens, vision patches)`` of a ``frames x image_size^2`` clip through the adapter's own
    preprocessing (token footprints exactly as in training), plus camera tokens and ``text_tokens`` of text."""
    adapter = model.adapter
    clip = np.zeros((frames, image_size, image_size, 3), dtype=np.uint8)
    options = dict(model.preprocessing or adapter.default_preprocessing(model.config.vlm_config))
    encoding = adapter.preprocess_video(clip, model.config.vlm_config, options, where="dry-run clip")
    vision = encoding.num_vision_tokens
    patches = int(encoding.pixel_values.shape[0])
    if encoding.pixel_values.ndim == 4:  # [T, 3, S, S] frames -> patches of the tower
        vc = model.config.vlm_config.vision_config
        patches = frames * (int(vc.image_size) // int(vc.patch_size)) ** 2
    camera = frames if model.config.camera_prior is not None else 0
    return vision + camera + text_tokens, vision, patches


def _count(modules: list[nn.Module]) -> int:
    """Parameters of ``modules``, each shared one once."""
    return sum(p.numel() for p in {id(p): p for module in modules for p in module.parameters()}.values())


def _lora_params(llm: nn.Module, targets: list[str], rank: int) -> int:
    total = 0
    for name, module in llm.named_modules():
        if isinstance(module, nn.Linear) and name.split(".")[-1] in targets:
            total += rank * (module.in_features + module.out_features)
    return total


def estimate_training_memory(
    model: Any,
    *,
    finetune: str,
    freeze_vision_tower: bool,
    gradient_checkpointing: bool,
    weight_dtype: torch.dtype,
    mixed_precision: str,
    frames: int,
    image_size: int,
    text_tokens: int = 128,
    batch_size: int = 1,
    lora_rank: int = 16,
    lora_targets: list[str] | None = None,
) -> MemoryEstimate:
    """The estimate of one training step's peak memory for ``model`` (may live on the meta device)."""
    adapter = model.adapter
    vlm = model.vlm
    vision = _count(adapter.vision_modules(vlm))
    projector = _count(adapter.projector_modules(vlm))
    heads = _count([m for m in model.objective_heads() if m is not model.recognition_head])
    total = _count([model])
    llm = total - vision - projector - heads  # LLM decoder, embeddings, LM head
    params = {"vision": vision, "projector": projector, "llm": llm, "heads": heads}
    if finetune == "lora":
        lora = _lora_params(adapter.language_model(vlm), lora_targets or [], lora_rank)
        params["lora"] = lora
        trainable = lora + projector + heads + (0 if freeze_vision_tower else vision)
    else:
        trainable = total - (vision if freeze_vision_tower else 0)
    b_w = _BYTES[weight_dtype]
    autocast = mixed_precision in ("bf16", "fp16", "auto")  # "auto" is bf16 on a GPU
    b_a = 2 if (autocast or weight_dtype != torch.float32) else 4
    b_r = b_w  # the residual stream keeps the weights' dtype under autocast
    seq, n_vision, n_patches = sequence_length(model, frames, image_size, text_tokens)
    tokens = seq * batch_size
    text = model.config.vlm_config.get_text_config()
    d, inter, layers = int(text.hidden_size), int(text.intermediate_size), int(text.num_hidden_layers)
    head_dim = int(getattr(text, "head_dim", None) or d // int(text.num_attention_heads))
    d_kv = int(text.num_key_value_heads) * head_dim
    per_layer = tokens * (7 * d + 2 * d_kv + 5 * inter) * b_a
    # checkpointing keeps each layer's input and recomputes one layer at a time in backward
    activations = (layers * tokens * d * b_r + per_layer) if gradient_checkpointing else layers * per_layer
    vc = model.config.vlm_config.vision_config
    d_v = int(getattr(vc, "hidden_size", 0) or getattr(vc, "embed_dim", 0))
    i_v = int(getattr(vc, "intermediate_size", 4 * d_v))
    vision_transient = n_patches * batch_size * (6 * d_v + 2 * i_v) * b_a
    heads_rows = 2 * tokens * d * b_a
    memory = {
        "weights": float(total * b_w),
        "gradients": float(trainable * b_w),
        "optimizer (AdamW)": float(2 * trainable * b_w),
        "activations (LLM)": float(activations),
        "vision tower (transient)": float(vision_transient),
        "heads + LM head rows": float(heads_rows),
    }
    return MemoryEstimate(
        backbone=model.config.backbone,
        frames=frames,
        image_size=image_size,
        seq_len=seq,
        vision_tokens=n_vision,
        vision_patches=n_patches,
        params=params,
        trainable=int(trainable),
        bytes=memory,
    )


def format_estimate(est: MemoryEstimate, title: str) -> str:
    """A printable table of the estimate."""
    lines = [
        f"{title}",
        f"  backbone {est.backbone}: {est.frames} frames at {est.image_size}x{est.image_size} -> "
        f"{est.vision_tokens} vision tokens, sequence {est.seq_len} tokens, {est.vision_patches} vision patches",
        "  parameters:",
    ]
    total = sum(v for k, v in est.params.items() if k != "lora")
    for key, value in est.params.items():
        lines.append(f"    {key:<28}{value / 1e6:>12.1f} M")
    lines.append(f"    {'total':<28}{total / 1e6:>12.1f} M")
    lines.append(f"    {'trained':<28}{est.trainable / 1e6:>12.1f} M")
    lines.append(f"    {'loc3r heads / total':<28}{100 * est.params['heads'] / max(total, 1):>12.3f} %")
    lines.append("  memory per GPU (one process, no sharding):")
    for key, value in est.bytes.items():
        lines.append(f"    {key:<28}{value / GIB:>12.2f} GiB")
    lines.append(f"    {'total':<28}{est.total_bytes / GIB:>12.2f} GiB  (+ CUDA context / fragmentation)")
    return "\n".join(lines)


def build_meta_model(cfg: Any) -> Any:
    """The recipe's model on the ``meta`` device (no memory): its backbone config with random-weight shapes.

    ``cfg`` is a :class:`~loc3r.train.config.RecipeConfig`; a tiny tokenizer supplies the placeholder ids (only
    shapes matter here)."""
    from loc3r.model.loading import build_model
    from loc3r.model.tokenizer import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(["a dry run of the recipe"], 512, cfg.model.backbone)
    with torch.device("meta"):
        return build_model(cfg.model, tokenizer=tokenizer, weights=False)


def estimate_recipe(cfg: Any, frames: int | None = None, image_size: int = 384, text_tokens: int = 128) -> str:
    """The dry-run report of a recipe: its memory estimate as a table (``frames`` default: ``data.num_frames``)."""
    model = build_meta_model(cfg)
    m = cfg.model
    frames = int(frames or cfg.data.num_frames)
    est = estimate_training_memory(
        model,
        finetune=m.finetune,
        freeze_vision_tower=m.freeze_vision_tower,
        gradient_checkpointing=m.gradient_checkpointing,
        weight_dtype={"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[m.dtype],
        mixed_precision=cfg.train.mixed_precision,
        frames=frames,
        image_size=image_size,
        text_tokens=text_tokens,
        batch_size=cfg.train.batch_size,
        lora_rank=m.lora.r,
        lora_targets=list(m.lora.target_modules),
    )
    title = (
        f"loc3r train --dry-run: {m.backbone} ({m.init}), finetune={m.finetune}, weights {m.dtype}, "
        f"mixed_precision={cfg.train.mixed_precision}, gradient_checkpointing={m.gradient_checkpointing}, "
        f"batch {cfg.train.batch_size}"
    )
    return format_estimate(est, title)
