"""The one 2-layer MLP of loc3r: ``Linear(d_in, d_hidden) → GELU → Linear(d_hidden, d_out)``.

Used by the ``<Pos>`` / ``<Ori>`` heads (:mod:`loc3r.model.heads`, computed in float32), the camera-prior
projector ``f_cam`` (:mod:`loc3r.model.camera_prior`) and the cue-injection MLP
(:mod:`loc3r.model.cue_injection`), which compute in their parameters' dtype. Subclasses keep the parameter
names ``fc1`` / ``fc2`` at their top level, so checkpoints load unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TwoLayerMLP", "linear_fp32"]


def linear_fp32(layer: nn.Linear, x: Tensor) -> Tensor:
    """``layer(x)`` computed in float32 (input and parameters up-cast; gradients flow back to both)."""
    bias = layer.bias.float() if layer.bias is not None else None
    return F.linear(x.float(), layer.weight.float(), bias)


class TwoLayerMLP(nn.Module):
    """``Linear(d_in, d_hidden) → GELU → Linear(d_hidden, d_out)``.

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
