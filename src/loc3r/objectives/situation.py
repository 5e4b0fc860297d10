"""Situation estimation (the paper's ``<Pos>`` / ``<Ori>`` objective, DESIGN.md §2): where the agent of the
situation text stands and which way it faces, in the clip's BEV frame.

* **Targets** (:func:`situation_targets`): the sample's agent position (x-y) and yaw, mapped into the BEV frame of
  the anchor (``poses[0]``); missing (no agent pose or no poses) → masked.
* **Heads**, by ``situation_head``: ``"mlp"`` — the paper's two-layer MLPs on the ``<Pos>`` / ``<Ori>`` hidden states
  (:class:`PositionHead`, :class:`OrientationHead`); ``"pointer"`` — ours, :mod:`loc3r.objectives.pointer`
  (attention over the vision tokens reading the layout head's BEV positions, plus the optional anchor supervision
  ``anchor_loss_weight``).
* **Losses**: ``L_pos`` = Gaussian NLL of the position (:func:`loc3r.objectives.common.gaussian_nll`); ``L_ori`` =
  KL from the wrapped-Gaussian target over ``num_orientation_bins`` yaw bins (:func:`orientation_kl`); decoded by the
  circular soft-argmax (:func:`decode_orientation`). Together::

      L_sit = L_pos + λ_ori · L_ori

* **Weights**: ``situation_loss_weight`` (the paper's ``λ_sit = 0.075``) and ``orientation_loss_weight``
  (``λ_ori = 3.5``); ``situation_objective`` switches the ``<Pos> <Ori>`` tokens and heads on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from loc3r.objectives.common import TwoLayerMLP, init_small, split_gaussian, wrap_angle_torch

SITUATION_HEADS = ("mlp", "pointer")
#: how the pointer heads build their query (:mod:`loc3r.objectives.pointer`): "state" (one projection of the ``<Pos>`` /
#: ``<Ori>`` state, the default), "text" (read the situation text's words, then the scene; not better at the demo's
#: budget: benchmarks/RESULTS.md "Issue 20") or "names" (the same two hops, the words' queries are the KEY projection
#: of their input embeddings, so a name matches the vision tokens that carry it from the start; needs keys "input")
POINTER_QUERIES = ("text", "state", "names")
#: what the pointer heads' keys read on each vision token: "final" (its final hidden state) or "input" (its input
#: embedding: the tower's features as the LLM receives them, which the LLM's fine-tuning does not move)
POINTER_KEYS = ("final", "input")
#: how the ``<Pos>`` pointer turns attention into a position (:mod:`loc3r.objectives.pointer`): "mean" (the attended
#: tokens' mean plus an offset, the default) or "solve" (a soft solve of every relation of the text on the predicted
#: map: anchors, faced object and side objects by sector)
POINTER_POSITIONS = ("mean", "solve")
#: the config fields of this objective and their defaults (Loc3rConfig takes them from here)
CONFIG = {
    "situation_objective": True,
    "situation_loss_weight": 0.075,
    "orientation_loss_weight": 3.5,
    "num_orientation_bins": 36,
    "orientation_sigma_bins": 2.0,
    "head_intermediate_size": None,
    "situation_head": "mlp",
    "pointer_key_dim": 64,
    "pointer_query": "state",
    "pointer_keys": "final",
    "pointer_position": "mean",
    #: anchor supervision of the pointer heads (ours, :mod:`loc3r.objectives.pointer`); off as in the paper recipes
    "anchor_loss_weight": 0.0,
}


class PositionHead(nn.Module):
    """``<Pos>`` head: ``Linear(D, I) → GELU → Linear(I, 4)`` → ``(μ_x, μ_y)`` and clamped ``log σ²`` (float32).

    ``I = intermediate_size`` defaults to ``hidden_size``.
    """

    def __init__(self, hidden_size: int, intermediate_size: int | None = None) -> None:
        super().__init__()
        self.mlp = TwoLayerMLP(hidden_size, intermediate_size or hidden_size, 4, float32=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_small(self.mlp.fc1, self.mlp.fc2)

    def forward(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """``hidden [..., D]`` → ``(mean [..., 2], log_var [..., 2])`` float32."""
        return split_gaussian(self.mlp(hidden))


class OrientationHead(nn.Module):
    """``<Ori>`` head: ``Linear(D, I) → GELU → Linear(I, num_bins)`` → yaw-bin logits (float32).

    ``num_bins >= 2`` (``Loc3rConfig.num_orientation_bins``, checked there, as ``orientation_sigma_bins > 0`` is).
    """

    def __init__(self, hidden_size: int, num_bins: int = 36, intermediate_size: int | None = None) -> None:
        super().__init__()
        self.num_bins = num_bins
        self.mlp = TwoLayerMLP(hidden_size, intermediate_size or hidden_size, num_bins, float32=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Near-zero logits at init: the initial prediction is an almost uniform orientation distribution."""
        init_small(self.mlp.fc1, self.mlp.fc2)

    def forward(self, hidden: Tensor) -> Tensor:
        """``hidden [..., D]`` → ``logits [..., num_bins]`` float32."""
        return self.mlp(hidden)


def build_mlp_heads(config: Any, hidden_size: int) -> tuple[PositionHead | None, OrientationHead | None]:
    """The paper's ``<Pos>`` / ``<Ori>`` heads (``situation_head = "mlp"``), each when its loss is on."""
    mlp, size = config.situation_head == "mlp", config.head_intermediate_size
    position = PositionHead(hidden_size, size) if config.situation_loss_enabled and mlp else None
    bins = config.num_orientation_bins
    return position, OrientationHead(hidden_size, bins, size) if config.orientation_loss_enabled and mlp else None


def orientation_bin_centers(
    num_bins: int = 36, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Yaw bin centres ``θ_b = -π + (b + 0.5) · 2π / B`` for b = 0..B-1 (bin b covers ``[-π + b·2π/B, ...)``)."""
    b = torch.arange(num_bins, device=device, dtype=torch.float64)
    return (-math.pi + (b + 0.5) * (2.0 * math.pi / num_bins)).to(dtype)


def wrapped_gaussian_target(yaw: Tensor, num_bins: int = 36, sigma_bins: float = 2.0) -> Tensor:
    """Soft orientation target over the yaw bins.

    ``w_b ∝ exp(-1/2 · (wrap(θ - θ_b) / σ)²)``, ``σ = sigma_bins · 2π/B`` (the paper's σ_ori = 2, read as bins:
    20° for 36 bins), normalised so ``Σ_b w_b = 1``. The angular difference is wrapped, so a yaw near ±π
    puts mass on both the first and the last bins. ``yaw [...]`` (radians, any real value) → ``[..., num_bins]``.
    """
    centers = orientation_bin_centers(num_bins, device=yaw.device)
    sigma = sigma_bins * 2.0 * math.pi / num_bins
    diff = wrap_angle_torch(yaw.float().unsqueeze(-1) - centers)
    # log-weights shifted by their max, then softmax == normalised exp; avoids an all-zero row for tiny σ.
    return torch.softmax(-0.5 * (diff / sigma) ** 2, dim=-1)


def orientation_kl(logits: Tensor, yaw: Tensor, mask: Tensor | None = None, sigma_bins: float = 2.0) -> Tensor:
    """Orientation loss ``L_ori = mean_{valid n} KL(w_n || softmax(logits_n))``.

    ``KL(w || p) = Σ_b w_b (log w_b - log p_b)`` with ``w`` from :func:`wrapped_gaussian_target` (terms with
    ``w_b = 0`` contribute 0). It is ≥ 0 and exactly 0 when ``softmax(logits) = w``. ``logits [N, B]``, target
    ``yaw [N]`` (non-finite entries and False rows of ``mask [N]`` are excluded), ``sigma_bins`` the target width.
    """
    yaw = yaw.to(device=logits.device, dtype=torch.float32)
    valid = torch.isfinite(yaw)
    if mask is not None:
        valid = valid & mask.to(device=logits.device, dtype=torch.bool)
    log_p = torch.log_softmax(logits.float(), dim=-1)
    target = wrapped_gaussian_target(torch.where(valid, yaw, 0.0), logits.shape[-1], sigma_bins)
    positive = target > 0
    log_t = torch.log(torch.where(positive, target, 1.0))
    per_sample = torch.where(positive, target * (log_t - log_p), 0.0).sum(dim=-1)
    per_sample = torch.where(valid, per_sample, 0.0)
    return per_sample.sum() / valid.sum().clamp_min(1)


def decode_orientation(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Circular soft-argmax of orientation logits.

    ``p = softmax(logits)``, ``v = Σ_b p_b [cos θ_b, sin θ_b]``; ``yaw = atan2(v_y, v_x)`` wrapped to [-π, π)
    and ``confidence = |v|`` ∈ [0, 1] (1 for all mass in one bin, ≈ 0 for a uniform or bimodal-opposite
    distribution, where the yaw is then meaningless). Returns ``(yaw [...], confidence [...])`` float32.
    """
    p = torch.softmax(logits.float(), dim=-1)
    centers = orientation_bin_centers(logits.shape[-1], device=logits.device)
    vx = (p * torch.cos(centers)).sum(dim=-1)
    vy = (p * torch.sin(centers)).sum(dim=-1)
    yaw = wrap_angle_torch(torch.atan2(vy, vx))
    confidence = torch.sqrt(vx**2 + vy**2).clamp(0.0, 1.0)
    return yaw, confidence


def situation_targets(sample, anchor) -> tuple[np.ndarray | None, float | None]:
    """The agent's ``(position x-y [2], yaw)`` in the BEV frame of ``anchor``; ``(None, None)`` when unknown."""
    if sample.agent_position is None or sample.agent_yaw is None or anchor is None:
        return None, None
    position = anchor.points_to_bev(np.asarray(sample.agent_position, dtype=np.float64))[:2]
    return position, float(anchor.yaw_to_bev(float(sample.agent_yaw)))


def batch_situation(targets: list[tuple[np.ndarray | None, float | None]]) -> dict[str, Tensor]:
    """``situation_position [B, 2]``, ``situation_yaw [B]``, ``situation_valid [B]`` (zeros where unknown)."""
    positions = [np.zeros(2, dtype=np.float32) if p is None else p.astype(np.float32) for p, _ in targets]
    return {
        "situation_position": torch.from_numpy(np.stack(positions)),
        "situation_yaw": torch.tensor([0.0 if y is None else y for _, y in targets], dtype=torch.float32),
        "situation_valid": torch.tensor([p is not None for p, _ in targets], dtype=torch.bool),
    }
