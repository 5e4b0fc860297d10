"""What the objectives share (DESIGN.md §2): numerically safe loss helpers, the float32 MLP of the heads, the
batch scatter of per-token targets and the per-sample context of the target builders.

One objective, one module (:mod:`loc3r.objectives`): :mod:`~loc3r.objectives.layout`,
:mod:`~loc3r.objectives.situation` (+ :mod:`~loc3r.objectives.pointer`), :mod:`~loc3r.objectives.camera_prior`,
:mod:`~loc3r.objectives.recognition` and :mod:`~loc3r.objectives.qa` each own their targets, head, loss, default
weight and config fields. Every loss function of those modules

* computes in float32 whatever the input dtype (bf16 log-variances and exponentials are not accurate enough),
* never produces NaN / inf: invalid targets are masked *before* any arithmetic touches them (so no
  ``0 * NaN``), log-variances are clamped to ``[LOG_VAR_MIN, LOG_VAR_MAX]``, and a batch without any valid
  target gives an exact 0 that is still connected to the autograd graph (so DDP / ZeRO see every
  parameter used and ``loss.backward()`` works),
* carries its formula in its docstring.

Their weighted sum is :func:`loc3r.objectives.combine.combine_losses`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOG_VAR_MIN = -10.0
"""Lower clamp of predicted log-variances: σ ≥ exp(-5) ≈ 6.7 mm, so 1/σ² ≤ 2.2e4 stays finite in fp32."""
LOG_VAR_MAX = 10.0
"""Upper clamp of predicted log-variances: σ ≤ exp(5) ≈ 148 m, far beyond any indoor scene."""


def clamp_log_var(log_var: Tensor) -> Tensor:
    """Clamp log-variances to ``[LOG_VAR_MIN, LOG_VAR_MAX]`` (so ``exp(±log σ²)`` never overflows)."""
    return log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX)


def wrap_angle_torch(theta: Tensor) -> Tensor:
    """Wrap angles (radians) to [-π, π): ``wrap(θ) = ((θ + π) mod 2π) - π`` (torch twin of ``geometry.wrap_angle``).

    Just below -π the remainder can round up to exactly 2π (giving +π); that edge is mapped back to -π.
    In float32 the bounds are float32(π), i.e. within 1e-7 of ±π.
    """
    wrapped = torch.remainder(theta + math.pi, 2.0 * math.pi) - math.pi
    return torch.where(wrapped >= math.pi, wrapped - 2.0 * math.pi, wrapped)


def graph_zero(*tensors: Tensor) -> Tensor:
    """An exact float32 0 connected to the graph of ``tensors`` (NaN-safe: built from ``where``, not ``0 * x``)."""
    out = None
    for t in tensors:
        term = torch.where(torch.zeros((), dtype=torch.bool, device=t.device), t.float(), 0.0).sum()
        out = term if out is None else out + term
    assert out is not None
    return out


def _check_last_dim(name: str, t: Tensor, size: int) -> None:
    if t.ndim == 0 or t.shape[-1] != size:
        raise ValueError(f"{name}: expected shape [..., {size}], got {tuple(t.shape)}")


def gaussian_nll(mean: Tensor, log_var: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Diagonal 2D Gaussian negative log-likelihood over the valid elements.

    With ``σ²_a,i = exp(clamp(log_var_a,i))`` for axis a ∈ {x, y}::

        L = mean_{valid i} 1/2 · Σ_a [ (a_i - â_i)² / σ²_a,i + log σ²_a,i ]

    (the constant ``log 2π`` is dropped, as in the paper). Used for the per-vision-token layout loss
    ``L_BEV`` and the ``<Pos>`` loss ``L_pos``. ``mean / log_var / target [..., 2]`` (``log_var`` clamped here too);
    target rows with a non-finite entry and False rows of ``mask [...]`` are excluded. A float32 scalar.
    """
    _check_last_dim("gaussian_nll: mean", mean, 2)
    _check_last_dim("gaussian_nll: log_var", log_var, 2)
    _check_last_dim("gaussian_nll: target", target, 2)
    if mean.shape != log_var.shape or mean.shape != target.shape:
        raise ValueError(
            "gaussian_nll: mean, log_var and target must have the same shape, got "
            f"{tuple(mean.shape)}, {tuple(log_var.shape)}, {tuple(target.shape)}"
        )
    target = target.to(device=mean.device, dtype=torch.float32)
    valid = torch.isfinite(target).all(dim=-1)
    if mask is not None:
        if mask.shape != mean.shape[:-1]:
            raise ValueError(
                f"gaussian_nll: mask must have shape {tuple(mean.shape[:-1])} (mean without its last axis), "
                f"got {tuple(mask.shape)}"
            )
        valid = valid & mask.to(device=mean.device, dtype=torch.bool)
    mean32 = mean.float()
    log_var32 = clamp_log_var(log_var.float())
    # Invalid targets are replaced *before* any arithmetic (no 0 * NaN); ``where`` keeps shapes static
    # (no host sync, compile-friendly) and routes zero gradient to the excluded rows.
    safe_target = torch.where(valid.unsqueeze(-1), target, mean32.detach())
    per_row = 0.5 * (((safe_target - mean32) ** 2) * torch.exp(-log_var32) + log_var32).sum(dim=-1)
    per_row = torch.where(valid, per_row, 0.0)
    return per_row.sum() / valid.sum().clamp_min(1)


def linear_fp32(layer: nn.Linear, x: Tensor) -> Tensor:
    """``layer(x)`` computed in float32 (input and parameters up-cast; gradients flow back to both)."""
    bias = layer.bias.float() if layer.bias is not None else None
    return F.linear(x.float(), layer.weight.float(), bias)


class TwoLayerMLP(nn.Module):
    """The one 2-layer MLP of loc3r: ``Linear(d_in, d_hidden) → GELU → Linear(d_hidden, d_out)``.

    Used by the ``<Pos>`` / ``<Ori>`` heads (computed in float32), the camera-prior projector ``f_cam`` and the
    cue-injection MLP (:mod:`loc3r.model.cue_injection`), which compute in their parameters' dtype. Subclasses keep
    the parameter names ``fc1`` / ``fc2`` at their top level, so checkpoints load unchanged.

    ``float32=True``: computed in float32 whatever the dtype of the input and of the parameters (the objective
    heads: accurate log-variances and softmaxes under bf16); else in the parameters' dtype (the input is cast
    to it), so the module follows the model's dtype.
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int, float32: bool = False) -> None:
        super().__init__()
        self.float32 = float32
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: Tensor) -> Tensor:
        if self.float32:
            return linear_fp32(self.fc2, self.act(linear_fp32(self.fc1, x)))
        return self.fc2(self.act(self.fc1(x.to(self.fc1.weight.dtype))))


def init_small(*layers: nn.Linear) -> None:
    """The heads' initialisation of each layer in turn: weights ``N(0, 0.02²)``, zero bias."""
    for layer in layers:
        nn.init.normal_(layer.weight, std=0.02)
        nn.init.zeros_(layer.bias)


def split_gaussian(out: Tensor) -> tuple[Tensor, Tensor]:
    """``[..., 4]`` → ``(mean [..., 2], clamped log_var [..., 2])``."""
    return out[..., :2], clamp_log_var(out[..., 2:])


def scatter_tokens(
    items: list[tuple[np.ndarray, np.ndarray] | None],
    offsets: list[int],
    length: int,
    fill: float | int | bool,
    dtype: torch.dtype,
) -> Tensor:
    """``[B, length, ...]`` filled with ``fill``, row b holding ``values`` at the sequence positions
    ``slots + offsets[b]`` for each ``items[b] = (slots, values)`` (None: the row keeps ``fill``)."""
    first = next((it[1] for it in items if it is not None), None)
    out = torch.full((len(items), length, *(() if first is None else first.shape[1:])), fill, dtype=dtype)
    for b, it in enumerate(items):
        if it is not None:
            out[b, torch.from_numpy(it[0] + offsets[b])] = torch.from_numpy(it[1])
    return out


@dataclass
class ClipTargets:
    """What an objective's target builder reads for one sample: the sample, its BEV anchor frame (None without
    poses), the preprocessed clip (``encoding.segments`` are the vision tokens' footprints), the sequence positions
    of the vision tokens, the per-clip cache entry (targets that depend on the clip only are stored there, so several
    samples of one clip compute them once) and ``where`` (names the sample in errors)."""

    sample: Any
    anchor: Any
    encoding: Any
    video_slots: np.ndarray
    clip: dict[str, Any] = field(default_factory=dict)
    where: str = ""
