"""Recognition (base pretraining only; not in the paper): every vision token, as the vision tower feeds it to the
LLM, classifies what its footprint shows (the stand-in for a pretrained image encoder when a base is pretrained
from scratch, :mod:`loc3r.synthrooms.pretraining`).

* **Targets** (:func:`token_labels`): each vision token's class histogram over ``recognition_classes`` from the
  sample's ``pixel_labels`` (its ``label_names`` mapped onto the classes by name; a name not in the list is
  unlabelled), pooled over the token's footprint.
* **Head** (:class:`RecognitionHead`): ONE linear layer on every vision token's embedding → class logits.
* **Loss** (:func:`token_category_loss`): soft-target cross-entropy with background-only tokens down-weighted
  (``recognition_background_weight``).
* **Weight**: ``recognition_loss_weight`` (1.0, what the pretraining recipe ``configs/base/loc3r_tiny.yaml``
  uses); ``recognition_objective`` switches it on (off by default).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from loc3r.core.geometry import pool_token_labels
from loc3r.objectives.common import ClipTargets, linear_fp32, scatter_tokens

#: the config fields of this objective and their defaults (Loc3rConfig takes them from here)
CONFIG = {
    "recognition_objective": False,
    "recognition_classes": None,
    "recognition_loss_weight": 1.0,
    "recognition_background_weight": 0.2,
}


class RecognitionHead(nn.Module):
    """Per-vision-token category classifier on the vision tower's output: one ``nn.Linear(hidden_size, C)``.

    It reads the tower's token embeddings *before* the LLM, so its loss trains the tower to recognise what each
    token shows, as a pretrained image encoder would (the LLM cannot do the work for it).
    """

    def __init__(self, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Small weights and zero bias: near-uniform class probabilities at init."""
        nn.init.normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        """``hidden [..., D]`` → ``logits [..., C]`` float32."""
        return linear_fp32(self.proj, hidden)


def build_head(config: Any, hidden_size: int) -> RecognitionHead | None:
    """The recognition head when the objective is on (switched on and a non-zero weight)."""
    return RecognitionHead(hidden_size, len(config.recognition_classes)) if config.recognition_enabled else None


def token_labels(ctx: ClipTargets, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(video_slots, class histogram [N, C] float32, labelled [N])`` of the clip's vision tokens (cached per
    clip)."""
    if "token_labels" not in ctx.clip:
        n, sample = ctx.encoding.num_vision_tokens, ctx.sample
        dist, labelled = np.zeros((n, len(classes)), dtype=np.float32), np.zeros(n, dtype=bool)
        if sample.pixel_labels is not None:
            by_name = {name: k for k, name in enumerate(classes)}
            lut = np.array([by_name.get(name, -1) for name in sample.label_names or []], dtype=np.int64)
            pixels = np.asarray(sample.pixel_labels, dtype=np.int64)
            labels = np.where(pixels >= 0, lut[np.clip(pixels, 0, None)], -1)
            dist, labelled = pool_token_labels(labels, ctx.encoding.segments, len(classes))
        ctx.clip["token_labels"] = (dist.astype(np.float32), labelled)
    dist, labelled = ctx.clip["token_labels"]
    return ctx.video_slots, dist, labelled


def batch_token_labels(items: list[dict], offsets: list[int], length: int) -> dict[str, Tensor]:
    """``recognition_targets [B, L, C]`` (zeros off the vision tokens) and ``recognition_valid [B, L]``."""
    labels = [it["token_labels"] for it in items]
    return {
        "recognition_targets": scatter_tokens([t[:2] for t in labels], offsets, length, 0.0, torch.float32),
        "recognition_valid": scatter_tokens([t[::2] for t in labels], offsets, length, False, torch.bool),
    }


def token_category_loss(
    logits: Tensor, target: Tensor, valid: Tensor | None = None, background_weight: float = 1.0
) -> Tensor:
    """Per-token recognition loss: soft-target cross-entropy, background-only tokens down-weighted.

    ``L_rec = Σ_i w_i · ( -Σ_c q_ic · log softmax(z_i)_c ) / Σ_i w_i`` over the valid tokens ``i``, where
    ``q_i`` is the class histogram of token ``i``'s footprint (sums to 1), ``z_i`` its logits, and
    ``w_i = background_weight`` when ``q_i0 = 1`` (the token shows class 0 only), else 1. ``logits / target [N, C]``,
    ``valid [N]`` (None = all); a float32 scalar.
    """
    logits = logits.float()
    target = target.float()
    if valid is None:
        valid = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
    per_token = -(target * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    weight = torch.where(target[:, 0] >= 1.0 - 1e-6, background_weight, 1.0) * valid.float()
    return (per_token * weight).sum() / weight.sum().clamp_min(1e-6)  # no valid token: an exact 0 in the graph
