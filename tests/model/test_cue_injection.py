"""Geometric-cue-injection baseline: Fourier encoding and the zero-initialised injector."""

from __future__ import annotations

import math

import pytest
import torch

from loc3r.model.cue_injection import CueInjector, fourier_encode, fourier_frequencies

D = 24


def test_fourier_encode_shape_and_wavelength_range() -> None:
    enc = fourier_encode(torch.zeros(2, 5, 3), num_frequencies=8)
    assert enc.shape == (2, 5, 3 + 6 * 8) and enc.dtype == torch.float32
    omega = fourier_frequencies(8, max_extent=10.0)
    wavelengths = 2 * math.pi / omega
    assert wavelengths.max().item() == pytest.approx(20.0, rel=1e-5)
    assert wavelengths.min().item() == pytest.approx(0.1, rel=1e-5)
    assert (wavelengths[1:] < wavelengths[:-1]).all()
    assert fourier_encode(torch.zeros(3), num_frequencies=1).shape == (9,)


def test_fourier_encode_values() -> None:
    p = torch.tensor([[1.0, -2.0, 0.5]])
    enc = fourier_encode(p, num_frequencies=4, max_extent=10.0)
    omega = fourier_frequencies(4, 10.0)
    assert torch.allclose(enc[0, :3], p[0] / 10.0)
    assert torch.allclose(enc[0, 3:6], torch.sin(omega[0] * p[0]))  # first frequency, x y z
    assert torch.allclose(enc[0, 3 + 12 : 3 + 15], torch.cos(omega[0] * p[0]))
    assert torch.allclose(enc[0, 3 + 3 : 3 + 6], torch.sin(omega[1] * p[0]))


def test_encoding_distinguishes_nearby_points() -> None:
    a = torch.tensor([1.0, 2.0, 0.5])
    for delta in (0.05, 0.02):
        b = a + torch.tensor([delta, 0.0, 0.0])
        dist = (fourier_encode(a) - fourier_encode(b)).norm().item()
        assert dist > 0.1, delta
    far = (fourier_encode(a) - fourier_encode(a + torch.tensor([5.0, 0.0, 0.0]))).norm().item()
    assert far > 0.5


def test_injector_zero_at_init_and_for_invalid_nan_tokens() -> None:
    inj = CueInjector(D)
    points = torch.randn(6, 3)
    points[2] = float("nan")
    points[4, 1] = float("inf")
    valid = torch.tensor([True, True, False, True, True, False])
    out = inj(points, valid)
    assert out.shape == (6, D) and (out == 0).all()  # zero-initialised last layer
    with torch.no_grad():
        inj.fc2.weight.normal_()
        inj.fc2.bias.normal_()
    out = inj(points, valid)
    assert torch.isfinite(out).all()
    assert (out[[2, 4, 5]] == 0).all()  # invalid, or non-finite although marked valid
    assert (out[[0, 1, 3]] != 0).any(dim=-1).all()


def test_gradients_reach_mlp_and_not_nan() -> None:
    torch.manual_seed(0)
    inj = CueInjector(D)
    points = torch.randn(5, 3, requires_grad=True)
    nan_points = torch.where(torch.tensor([False, True, False, False, True])[:, None], float("nan"), points)
    valid = torch.tensor([True, False, True, True, False])
    embeds = torch.randn(5, D)
    out = embeds + inj(nan_points, valid)
    (out**2).sum().backward()
    assert inj.fc2.weight.grad is not None and inj.fc2.weight.grad.abs().sum() > 0
    for p in inj.parameters():
        assert torch.isfinite(p.grad).all()
    assert torch.isfinite(points.grad).all()
    # after one optimiser step the first layer receives gradient too
    opt = torch.optim.SGD(inj.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    (inj(nan_points.detach(), valid) ** 2).sum().backward()
    assert inj.fc1.weight.grad.abs().sum() > 0


def test_bf16_injector_and_shape_errors() -> None:
    inj = CueInjector(D).to(torch.bfloat16)
    out = inj(torch.randn(3, 3), torch.ones(3, dtype=torch.bool))
    assert out.dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"points \[N, 3\]"):
        inj(torch.randn(3, 2), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="valid"):
        inj(torch.randn(3, 3), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_frequencies"):
        CueInjector(D, num_frequencies=0)
