"""Objective heads of loc3r (DESIGN.md §2): one small module per objective.

* :class:`LayoutHead` — ONE linear layer on the final hidden state of every vision token →
  ``(μ_x, μ_y, log σ²_x, log σ²_y)`` in the clip's BEV frame; trained with ``losses.gaussian_nll`` (L_BEV).
* :class:`PositionHead` — 2-layer MLP on the ``<Pos>`` hidden state → the same 4 numbers (L_pos).
* :class:`RecognitionHead` — ONE linear layer on every vision token's embedding as the vision tower outputs it →
  logits over object categories (``losses.token_category_loss``; base pretraining only, not in the paper).
* :class:`OrientationHead` — 2-layer MLP on the ``<Ori>`` hidden state → logits over ``num_bins`` yaw bins
  (L_ori = KL to a wrapped Gaussian; decoded by ``losses.decode_orientation``).

All heads compute in float32 whatever the dtype of their input *and* of their own parameters (a model cast
to bf16 casts the heads too): the input is ``.float()``-ed and the weights are up-cast on the fly, so
log-variances and softmaxes stay accurate and bf16 training stays stable. Outputs are float32.

HF ``PreTrainedModel._init_weights`` re-initialises every ``nn.Linear`` it meets; a model that wants the
heads' own initialisation calls ``module.reset_parameters()`` for these modules from its ``_init_weights``
(it is guarded by transformers' ``_is_hf_initialized`` flags, so loaded weights are never overwritten).
"""

from __future__ import annotations

from torch import Tensor, nn

from loc3r.model.mlp import TwoLayerMLP, linear_fp32
from loc3r.objectives.losses import clamp_log_var

__all__ = ["linear_fp32", "LayoutHead", "PositionHead", "OrientationHead", "RecognitionHead"]


def _split_gaussian(out: Tensor) -> tuple[Tensor, Tensor]:
    """``[..., 4]`` → ``(mean [..., 2], clamped log_var [..., 2])``."""
    return out[..., :2], clamp_log_var(out[..., 2:])


def _check_hidden(name: str, hidden: Tensor, hidden_size: int) -> None:
    if hidden.ndim == 0 or hidden.shape[-1] != hidden_size:
        raise ValueError(f"{name}: expected hidden states [..., {hidden_size}], got shape {tuple(hidden.shape)}")


class LayoutHead(nn.Module):
    """Per-vision-token BEV layout head: one ``nn.Linear(hidden_size, 4)``.

    ``forward(h) = (μ = W_μ h + b_μ, log σ² = clamp(W_σ h + b_σ, LOG_VAR_MIN, LOG_VAR_MAX))``.
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
        _check_hidden("LayoutHead", hidden, self.hidden_size)
        return _split_gaussian(linear_fp32(self.proj, hidden))


class PositionHead(nn.Module):
    """``<Pos>`` head: ``Linear(D, I) → GELU → Linear(I, 4)`` → ``(μ_x, μ_y)`` and clamped ``log σ²``.

    ``I = intermediate_size`` defaults to ``hidden_size``.
    """

    def __init__(self, hidden_size: int, intermediate_size: int | None = None) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.mlp = TwoLayerMLP(hidden_size, intermediate_size or hidden_size, 4, float32=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.mlp.fc1.weight, std=0.02)
        nn.init.zeros_(self.mlp.fc1.bias)
        nn.init.normal_(self.mlp.fc2.weight, std=0.02)
        nn.init.zeros_(self.mlp.fc2.bias)

    def forward(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """``hidden [..., D]`` → ``(mean [..., 2], log_var [..., 2])`` float32."""
        _check_hidden("PositionHead", hidden, self.hidden_size)
        return _split_gaussian(self.mlp(hidden))


class OrientationHead(nn.Module):
    """``<Ori>`` head: ``Linear(D, I) → GELU → Linear(I, num_bins)`` → yaw-bin logits (float32)."""

    def __init__(self, hidden_size: int, num_bins: int = 36, intermediate_size: int | None = None) -> None:
        super().__init__()
        if num_bins < 2:
            raise ValueError(f"OrientationHead: num_bins must be >= 2, got {num_bins}")
        self.hidden_size = hidden_size
        self.num_bins = num_bins
        self.mlp = TwoLayerMLP(hidden_size, intermediate_size or hidden_size, num_bins, float32=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Near-zero logits at init: the initial prediction is an almost uniform orientation distribution."""
        nn.init.normal_(self.mlp.fc1.weight, std=0.02)
        nn.init.zeros_(self.mlp.fc1.bias)
        nn.init.normal_(self.mlp.fc2.weight, std=0.02)
        nn.init.zeros_(self.mlp.fc2.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        """``hidden [..., D]`` → ``logits [..., num_bins]`` float32."""
        _check_hidden("OrientationHead", hidden, self.hidden_size)
        return self.mlp(hidden)


class RecognitionHead(nn.Module):
    """Per-vision-token category classifier on the vision tower's output: one ``nn.Linear(hidden_size, C)``.

    It reads the tower's token embeddings *before* the LLM, so its loss trains the tower to recognise what each
    token shows, as a pretrained image encoder would (the LLM cannot do the work for it).
    """

    def __init__(self, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.proj = nn.Linear(hidden_size, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Small weights and zero bias: near-uniform class probabilities at init."""
        nn.init.normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        """``hidden [..., D]`` → ``logits [..., C]`` float32."""
        _check_hidden("RecognitionHead", hidden, self.hidden_size)
        return linear_fp32(self.proj, hidden)
