"""Global layout reconstruction (the paper's ``L_BEV``, DESIGN.md §2): every vision token predicts the BEV x-y of
what it shows.

* **Targets** (:func:`token_points`): the clip's points (depth back-projected to the world) in the BEV frame of the
  anchor (``poses[0]``), pooled per vision token over its footprint (:func:`loc3r.core.geometry.pool_token_points`):
  the mean 3D point of each token, with a validity mask (no points or no poses: all masked). The cue-injection
  baseline and the oracle-objects input read the same per-token points.
* **Head** (:class:`LayoutHead`): ONE linear layer on the final hidden state of every vision token →
  ``(μ_x, μ_y, log σ²_x, log σ²_y)``.
* **Loss** (:func:`layout_loss`): the diagonal Gaussian NLL over the valid tokens
  (:func:`loc3r.objectives.common.gaussian_nll`)::

      L_BEV = mean_{valid i} 1/2 · Σ_a [ (a_i - â_i)² / σ²_a,i + log σ²_a,i ]

* **Weight**: ``bev_loss_weight`` (the paper's ``λ_bev = 0.05``); ``layout_objective`` switches it on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from loc3r.core.geometry import pool_token_points
from loc3r.objectives.common import ClipTargets, gaussian_nll, linear_fp32, scatter_tokens, split_gaussian

#: the config fields of this objective and their defaults (Loc3rConfig takes them from here)
CONFIG = {"layout_objective": True, "bev_loss_weight": 0.05}


class LayoutHead(nn.Module):
    """Per-vision-token BEV layout head: one ``nn.Linear(hidden_size, 4)``.

    ``forward(h) = (μ = W_μ h + b_μ, log σ² = clamp(W_σ h + b_σ, LOG_VAR_MIN, LOG_VAR_MAX))``, in float32.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.proj = nn.Linear(hidden_size, 4)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Small weights and zero bias: predictions start near the anchor origin with σ² ≈ 1 m²."""
        nn.init.normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    def forward(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """``hidden [..., D]`` → ``(mean [..., 2], log_var [..., 2])`` float32."""
        if hidden.ndim == 0 or hidden.shape[-1] != self.hidden_size:
            raise ValueError(f"LayoutHead: expected hidden states [..., {self.hidden_size}], got {tuple(hidden.shape)}")
        return split_gaussian(linear_fp32(self.proj, hidden))


def build_head(config: Any, hidden_size: int) -> LayoutHead | None:
    """The layout head when its objective is on, or when the pointer situation heads read it."""
    return LayoutHead(hidden_size) if config.layout_head_enabled else None


def token_points(ctx: ClipTargets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(video_slots, points [N, 3] float32 BEV (NaN where invalid), valid [N])`` of the clip's vision tokens
    (cached per clip: the footprints depend on the frames, poses and points only)."""
    if "token_points" not in ctx.clip:
        n = ctx.encoding.num_vision_tokens
        points, valid = np.full((n, 3), np.nan), np.zeros(n, dtype=bool)
        if ctx.sample.points is not None and ctx.anchor is not None:
            with np.errstate(invalid="ignore"):
                bev = ctx.anchor.points_to_bev(np.asarray(ctx.sample.points, dtype=np.float64))
            points, valid = pool_token_points(bev, ctx.encoding.segments)
        ctx.clip["token_points"] = (points.astype(np.float32), valid)
    return (ctx.video_slots, *ctx.clip["token_points"])


def batch_token_points(items: list[dict], offsets: list[int], length: int) -> tuple[Tensor, Tensor]:
    """``(points [B, L, 3] NaN where unknown, valid [B, L])`` of the samples' ``token_points``."""
    pts = scatter_tokens([it["token_points"][:2] for it in items], offsets, length, float("nan"), torch.float32)
    valid = scatter_tokens([it["token_points"][::2] for it in items], offsets, length, False, torch.bool)
    return pts, valid


def layout_loss(mean: Tensor, log_var: Tensor, targets: Tensor, valid: Tensor | None) -> Tensor:
    """``L_BEV`` over the vision tokens (``mean / log_var / targets [N, 2]``, ``valid [N]``)."""
    return gaussian_nll(mean, log_var, targets, valid)
