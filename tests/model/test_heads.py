"""Objective heads: shapes, float32 outputs under bf16, gradient flow, log-variance clamping."""

from __future__ import annotations

import pytest
import torch

from loc3r.model.configuration_loc3r import Loc3rConfig
from loc3r.objectives.common import LOG_VAR_MAX, LOG_VAR_MIN, gaussian_nll
from loc3r.objectives.layout import LayoutHead
from loc3r.objectives.situation import OrientationHead, PositionHead, orientation_kl

D = 32


def test_layout_head_is_one_linear_and_shapes() -> None:
    head = LayoutHead(D)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 1 and linears[0].in_features == D and linears[0].out_features == 4
    mean, log_var = head(torch.randn(2, 7, D))
    assert mean.shape == (2, 7, 2) and log_var.shape == (2, 7, 2)


def test_position_and_orientation_head_shapes() -> None:
    pos = PositionHead(D, intermediate_size=16)
    assert pos.mlp.fc1.out_features == 16 and isinstance(pos.mlp.act, torch.nn.GELU)
    mean, log_var = pos(torch.randn(5, D))
    assert mean.shape == (5, 2) and log_var.shape == (5, 2)
    ori = OrientationHead(D)
    assert ori.mlp.fc1.out_features == D  # intermediate defaults to hidden size
    assert ori(torch.randn(5, D)).shape == (5, 36)
    assert OrientationHead(D, num_bins=12)(torch.randn(3, 4, D)).shape == (3, 4, 12)


@pytest.mark.parametrize("param_dtype", [torch.float32, torch.bfloat16])
def test_heads_output_float32_under_bf16(param_dtype: torch.dtype) -> None:
    hidden = torch.randn(4, D, dtype=torch.bfloat16)
    for head in (LayoutHead(D), PositionHead(D), OrientationHead(D)):
        head = head.to(param_dtype)
        out = head(hidden)
        outs = out if isinstance(out, tuple) else (out,)
        assert all(o.dtype == torch.float32 and torch.isfinite(o).all() for o in outs)


def test_fp32_compute_matches_reference_in_bf16_model() -> None:
    head = LayoutHead(D)
    hidden = torch.randn(6, D)
    ref_mean, _ = head(hidden)
    bf16_mean, _ = head.to(torch.bfloat16)(hidden.to(torch.bfloat16))
    # only the bf16 rounding of weights and inputs differs, the product is accumulated in fp32
    assert torch.allclose(ref_mean, bf16_mean, atol=5e-2)


def test_gradients_flow_to_heads_and_inputs() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, D, dtype=torch.bfloat16, requires_grad=True)
    layout, pos, ori = LayoutHead(D).to(torch.bfloat16), PositionHead(D), OrientationHead(D)
    target = torch.randn(3, 5, 2)
    mean, log_var = layout(hidden)
    loss = gaussian_nll(mean, log_var, target)
    p_mean, p_log_var = pos(hidden[:, 0])
    loss = loss + gaussian_nll(p_mean, p_log_var, target[:, 0])
    loss = loss + orientation_kl(ori(hidden[:, 1]), torch.tensor([0.1, 2.0, -3.0]))
    loss.backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0
    for head in (layout, pos, ori):
        for name, p in head.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
            assert p.grad.dtype == p.dtype


def test_log_var_clamped() -> None:
    head = LayoutHead(D)
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.copy_(torch.tensor([1.0, 2.0, 1e6, -1e6]))
    mean, log_var = head(torch.randn(4, D))
    assert torch.allclose(mean, torch.tensor([1.0, 2.0]).expand(4, 2))
    assert (log_var[:, 0] == LOG_VAR_MAX).all() and (log_var[:, 1] == LOG_VAR_MIN).all()
    pos = PositionHead(D)
    with torch.no_grad():
        pos.mlp.fc2.bias.copy_(torch.tensor([0.0, 0.0, -1e9, 1e9]))
    _, log_var = pos(torch.randn(2, D) * 1e3)
    assert (log_var >= LOG_VAR_MIN).all() and (log_var <= LOG_VAR_MAX).all()


def test_wrong_hidden_size_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"LayoutHead: expected hidden states \[\.\.\., 32\]"):
        LayoutHead(D)(torch.randn(2, 16))
    # the number of orientation bins is checked once, where the model config is built
    with pytest.raises(ValueError, match="num_orientation_bins"):
        Loc3rConfig(num_orientation_bins=1)


def test_reset_parameters_restores_init() -> None:
    head = OrientationHead(D)
    with torch.no_grad():
        for p in head.parameters():
            p.fill_(3.0)
    head.reset_parameters()
    assert (head.mlp.fc2.bias == 0).all() and head.mlp.fc2.weight.std() < 0.05
