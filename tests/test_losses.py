"""Objective functions of loc3r.objectives (common, situation, combine): hand-computed values, masking, numerical
safety, orientation coding."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from loc3r.objectives.combine import LossWeights, combine_losses
from loc3r.objectives.common import LOG_VAR_MAX, LOG_VAR_MIN, gaussian_nll, wrap_angle_torch
from loc3r.objectives.situation import (
    decode_orientation,
    orientation_bin_centers,
    orientation_kl,
    wrapped_gaussian_target,
)

NAN = float("nan")
INF = float("inf")


# ----------------------------------------------------------------------------------------------- gaussian_nll
def test_gaussian_nll_hand_computed() -> None:
    mean = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    log_var = torch.tensor([[0.0, 0.0], [math.log(4.0), math.log(0.25)]])
    target = torch.tensor([[1.0, 2.0], [3.0, -1.5]])
    # row 0: 1/2 * (1/1 + 0 + 4/1 + 0) = 2.5
    # row 1: 1/2 * (4/4 + log 4 + 0.25/0.25 + log 0.25) = 1/2 * (1 + 1) = 1.0
    loss = gaussian_nll(mean, log_var, target)
    assert loss.item() == pytest.approx((2.5 + 1.0) / 2, abs=1e-6)
    assert loss.dtype == torch.float32 and loss.ndim == 0


def test_gaussian_nll_matches_torch_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(7, 5, 2, generator=gen)
    log_var = torch.randn(7, 5, 2, generator=gen)
    target = torch.randn(7, 5, 2, generator=gen)
    ref = torch.nn.functional.gaussian_nll_loss(mean, target, log_var.exp(), full=False, reduction="mean")
    # torch averages over the 2 axes too; ours sums over axes -> factor 2
    assert gaussian_nll(mean, log_var, target).item() == pytest.approx(2 * ref.item(), rel=1e-5)


def test_gaussian_nll_mask_and_nonfinite_targets_excluded() -> None:
    mean = torch.zeros(4, 2, requires_grad=True)
    log_var = torch.zeros(4, 2, requires_grad=True)
    target = torch.tensor([[1.0, 0.0], [NAN, 0.0], [0.0, INF], [0.0, 2.0]])
    mask = torch.tensor([True, True, True, False])
    loss = gaussian_nll(mean, log_var, target, mask)
    assert loss.item() == pytest.approx(0.5, abs=1e-6)  # only row 0: 1/2 * 1
    loss.backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(log_var.grad).all()
    assert mean.grad[1:].abs().sum() == 0 and log_var.grad[1:].abs().sum() == 0
    assert mean.grad[0, 0].item() == pytest.approx(-1.0)  # d/dμ 1/2 (1-μ)^2 at μ=0, mean over 1 row


def test_gaussian_nll_nothing_valid_is_zero_and_connected() -> None:
    mean = torch.zeros(3, 2, requires_grad=True)
    log_var = torch.zeros(3, 2, requires_grad=True)
    target = torch.full((3, 2), NAN)
    loss = gaussian_nll(mean, log_var, target)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert mean.grad is not None and (mean.grad == 0).all()
    empty = gaussian_nll(mean[:0], log_var[:0], target[:0])
    assert empty.item() == 0.0 and empty.requires_grad


@pytest.mark.parametrize("log_var_value", [1e6, -1e6])
def test_gaussian_nll_extreme_inputs_stay_finite(log_var_value: float) -> None:
    mean = torch.tensor([[1e6, -1e6], [0.0, 0.0]], requires_grad=True)
    log_var = torch.full((2, 2), log_var_value, requires_grad=True)
    target = torch.tensor([[-1e6, 1e6], [1e-3, 0.0]])
    loss = gaussian_nll(mean, log_var, target)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(log_var.grad).all()
    clamp = LOG_VAR_MAX if log_var_value > 0 else LOG_VAR_MIN
    expected = 0.5 * ((4e12 * math.exp(-clamp) + clamp) * 2 + (1e-6 * math.exp(-clamp) + 2 * clamp)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_gaussian_nll_bf16_inputs_compute_in_fp32() -> None:
    mean = torch.tensor([[0.1, 0.2]], dtype=torch.bfloat16)
    log_var = torch.zeros(1, 2, dtype=torch.bfloat16)
    target = torch.tensor([[0.3, 0.2]])
    loss = gaussian_nll(mean, log_var, target)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_gaussian_nll_shape_errors() -> None:
    with pytest.raises(ValueError, match="last axis"):
        gaussian_nll(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        gaussian_nll(torch.zeros(3, 3), torch.zeros(3, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="same shape"):
        gaussian_nll(torch.zeros(3, 2), torch.zeros(2, 2), torch.zeros(3, 2))


# ------------------------------------------------------------------------------------------------ orientation
def test_bin_centers() -> None:
    c = orientation_bin_centers(36)
    assert c.shape == (36,)
    assert c[0].item() == pytest.approx(-math.pi + math.pi / 36)
    assert c[-1].item() == pytest.approx(math.pi - math.pi / 36)
    assert torch.allclose(c[1:] - c[:-1], torch.full((35,), 2 * math.pi / 36))
    assert orientation_bin_centers(4).tolist() == pytest.approx(
        [-3 * math.pi / 4, -math.pi / 4, math.pi / 4, 3 * math.pi / 4]
    )


def test_wrapped_target_normalised_peaked_and_symmetric() -> None:
    centers = orientation_bin_centers(36)
    yaw = centers[[0, 7, 20, 35]]
    t = wrapped_gaussian_target(yaw)
    assert t.shape == (4, 36)
    assert torch.allclose(t.sum(-1), torch.ones(4), atol=1e-6)
    assert t.argmax(-1).tolist() == [0, 7, 20, 35]
    # symmetric about the peak bin, with the hand-computed ratio exp(-1/2 (1/2)^2) one bin away (σ = 2 bins)
    row = t[2]
    assert row[19].item() == pytest.approx(row[21].item(), rel=1e-5)
    assert (row[21] / row[20]).item() == pytest.approx(math.exp(-0.125), rel=1e-5)


def test_wrapped_target_wraps_across_pi() -> None:
    t = wrapped_gaussian_target(torch.tensor([math.pi - 1e-4, -math.pi]))
    for row in t:
        # mass on both ends: last and first bins are the two neighbours of ±π
        assert row[0].item() == pytest.approx(row[-1].item(), rel=1e-3)
        assert row[[0, 1, 34, 35]].sum() > 0.5
        assert row[15:21].sum() < 1e-6
    # yaw and yaw + 2πk give the same target
    yaw = torch.tensor([0.3, -2.9])
    assert torch.allclose(wrapped_gaussian_target(yaw), wrapped_gaussian_target(yaw + 6 * math.pi), atol=1e-6)


def test_wrapped_target_tiny_sigma_is_one_hot_not_nan() -> None:
    t = wrapped_gaussian_target(torch.tensor([0.1, 1.0]), sigma_bins=1e-3)
    assert torch.isfinite(t).all()
    assert torch.allclose(t.sum(-1), torch.ones(2))
    assert t.max(-1).values.min() > 0.99


def test_orientation_kl_zero_at_target_and_positive_elsewhere() -> None:
    yaw = torch.tensor([0.0, 1.0, -3.1, 3.14])
    logits = torch.log(wrapped_gaussian_target(yaw))
    assert orientation_kl(logits, yaw).item() == pytest.approx(0.0, abs=1e-5)
    # logits shifted by a constant describe the same distribution
    assert orientation_kl(logits + 5.0, yaw).item() == pytest.approx(0.0, abs=1e-5)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        rand_logits = torch.randn(4, 36, generator=gen) * 3
        assert orientation_kl(rand_logits, yaw).item() > 1e-3
    # uniform prediction: KL = log B - H(target)
    t = wrapped_gaussian_target(yaw)
    entropy = -(t * t.log()).sum(-1).mean()
    assert orientation_kl(torch.zeros(4, 36), yaw).item() == pytest.approx(math.log(36) - entropy.item(), rel=1e-5)


def test_orientation_kl_masking_and_gradients() -> None:
    logits = torch.randn(3, 36, requires_grad=True)
    yaw = torch.tensor([0.5, NAN, 2.0])
    mask = torch.tensor([True, True, False])
    loss = orientation_kl(logits, yaw, mask)
    only_first = orientation_kl(logits[:1].detach(), yaw[:1])
    assert loss.item() == pytest.approx(only_first.item(), rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[1:].abs().sum() == 0 and logits.grad[0].abs().sum() > 0
    none = orientation_kl(logits, yaw, torch.zeros(3, dtype=torch.bool))
    assert none.item() == 0.0 and none.requires_grad


def test_orientation_kl_extreme_logits_finite() -> None:
    logits = torch.zeros(2, 36)
    logits[0, 0] = 1e4
    logits[1, 18] = -1e4
    loss = orientation_kl(logits.requires_grad_(), torch.tensor([1.5, -1.5]))
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=-50.0, max_value=50.0, allow_nan=False))
def test_decode_recovers_any_yaw(yaw: float) -> None:
    logits = torch.log(wrapped_gaussian_target(torch.tensor([yaw], dtype=torch.float64)))
    decoded, confidence = decode_orientation(logits)
    expected = torch.tensor(yaw, dtype=torch.float64)
    err = wrap_angle_torch(decoded.double() - expected).abs().item()
    assert err < 1e-4
    assert -math.pi <= decoded.item() < math.pi
    assert 0.9 < confidence.item() <= 1.0


@pytest.mark.parametrize("yaw", [math.pi - 1e-6, -math.pi, -math.pi + 1e-6, math.pi - 0.05, 0.0])
def test_decode_near_pi(yaw: float) -> None:
    logits = torch.log(wrapped_gaussian_target(torch.tensor([yaw])))
    decoded, _ = decode_orientation(logits)
    assert wrap_angle_torch(decoded - yaw).abs().item() < 1e-4
    assert -math.pi <= decoded.item() < math.pi


def test_decode_confidence_behaviour() -> None:
    peaked = torch.full((36,), -1e3)
    peaked[5] = 0.0
    yaw, conf = decode_orientation(peaked)
    assert conf.item() == pytest.approx(1.0, abs=1e-5)
    assert yaw.item() == pytest.approx(orientation_bin_centers(36)[5].item(), abs=1e-5)
    _, conf_uniform = decode_orientation(torch.zeros(36))
    assert conf_uniform.item() < 1e-5
    opposite = torch.full((36,), -1e3)
    opposite[[0, 18]] = 0.0  # two antipodal bins: no direction
    _, conf_opposite = decode_orientation(opposite)
    assert conf_opposite.item() < 1e-5
    wide = torch.log(wrapped_gaussian_target(torch.tensor([1.0]), sigma_bins=6.0))
    narrow = torch.log(wrapped_gaussian_target(torch.tensor([1.0]), sigma_bins=1.0))
    assert decode_orientation(wide)[1].item() < decode_orientation(narrow)[1].item()


def test_decode_batched_shapes() -> None:
    yaw, conf = decode_orientation(torch.randn(2, 3, 36))
    assert yaw.shape == (2, 3) and conf.shape == (2, 3)
    assert ((conf >= 0) & (conf <= 1)).all()


# ---------------------------------------------------------------------------------------------- combine_losses
def test_combine_losses_paper_defaults() -> None:
    w = LossWeights()
    assert (w.bev, w.situation, w.orientation) == (0.05, 0.075, 3.5)
    ce, bev, pos, ori = (torch.tensor(v, requires_grad=True) for v in (2.0, 4.0, 1.5, 0.8))
    total, logs = combine_losses(ce, bev, pos, ori, w)
    expected = 2.0 + 0.05 * 4.0 + 0.075 * (1.5 + 3.5 * 0.8)
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert set(logs) == {"loss_ce", "loss_bev", "loss_pos", "loss_ori", "loss_sit", "loss"}
    assert logs["loss_sit"].item() == pytest.approx(1.5 + 3.5 * 0.8)
    assert logs["loss"].item() == pytest.approx(expected)
    assert all(not v.requires_grad for v in logs.values())
    total.backward()
    assert ce.grad.item() == pytest.approx(1.0)
    assert bev.grad.item() == pytest.approx(0.05)
    assert pos.grad.item() == pytest.approx(0.075)
    assert ori.grad.item() == pytest.approx(0.075 * 3.5)


def test_combine_losses_skips_none_terms() -> None:
    total, logs = combine_losses(torch.tensor(1.0), None, None, None, LossWeights())
    assert total.item() == 1.0 and set(logs) == {"loss_ce", "loss"}
    total, logs = combine_losses(None, torch.tensor(2.0), None, torch.tensor(1.0), LossWeights())
    assert total.item() == pytest.approx(0.05 * 2 + 0.075 * 3.5)
    assert set(logs) == {"loss_bev", "loss_ori", "loss_sit", "loss"}
    with pytest.raises(ValueError, match="None"):
        combine_losses(None, None, None, None, LossWeights())


def test_combine_losses_zero_weight_switches_term_off() -> None:
    w = LossWeights(bev=0.0, situation=0.075, orientation=0.0)
    total, logs = combine_losses(torch.tensor(1.0), torch.tensor(NAN), torch.tensor(2.0), torch.tensor(NAN), w)
    assert total.item() == pytest.approx(1.0 + 0.075 * 2.0)
    assert "loss_bev" in logs  # still logged
    with pytest.raises(ValueError, match="LossWeights.bev"):
        LossWeights(bev=-1.0)
