"""Geometric-cue-injection baseline (issue 2 part 6; Video-3D-LLM style) — the method the paper argues against.

Per vision token, the 3D point its footprint sees (mean of the depth + pose unprojected pixels, from
``geometry.pool_token_points``) is Fourier-encoded, passed through an MLP and **added** to the token's
vision embedding. It needs depth (and poses) at inference, which our objectives do not.

Pass the points in the clip's BEV anchor frame so the injected cue, like every other target, is invariant
to a gravity-preserving rigid motion of the world.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch
from torch import Tensor, nn

from loc3r.core.geometry import pool_token_points, simulate_depth_error
from loc3r.objectives.common import ClipTargets, TwoLayerMLP, scatter_tokens

MIN_WAVELENGTH = 0.1
"""Shortest encoded wavelength in metres (finer than a vision token's footprint at room scale)."""


def fourier_frequencies(num_frequencies: int = 8, max_extent: float = 10.0) -> Tensor:
    """Angular frequencies ``ω_k = 2π / λ_k`` with wavelengths geometric from ``2·max_extent`` down to 0.1 m.

    ``λ_k = λ_max · (λ_min / λ_max)^(k / (K - 1))``, k = 0..K-1, λ_max = 2·max_extent, λ_min = 0.1 m (K = 1: λ_max).
    """
    if num_frequencies < 1:
        raise ValueError(f"fourier_encode: num_frequencies must be >= 1, got {num_frequencies}")
    lam_max = 2.0 * max_extent
    if num_frequencies == 1:
        wavelengths = torch.tensor([lam_max], dtype=torch.float64)
    else:
        k = torch.arange(num_frequencies, dtype=torch.float64)
        wavelengths = lam_max * (MIN_WAVELENGTH / lam_max) ** (k / (num_frequencies - 1))
    return (2.0 * math.pi / wavelengths).float()


def fourier_encode(points: Tensor, num_frequencies: int = 8, max_extent: float = 10.0) -> Tensor:
    """Fourier features of 3D points: ``[p / max_extent, sin(ω_k p), cos(ω_k p)]`` → ``[..., 3 + 6K]`` float32.

    The raw coordinates are scaled by ``1 / max_extent`` (≈ unit range in a room); sin and cos are taken per
    coordinate and frequency (layout ``[sin(ω_0 x), sin(ω_0 y), sin(ω_0 z), sin(ω_1 x), ...]`` then the cosines).
    Wavelengths span 0.1 m .. 2·max_extent, so points 5 cm apart already get clearly different codes while
    the code is unique across the whole scene.
    """
    pts = points.float()
    omega = fourier_frequencies(num_frequencies, max_extent).to(pts.device)
    angles = (pts.unsqueeze(-2) * omega.unsqueeze(-1)).flatten(-2)  # [..., K*3]
    return torch.cat([pts / max_extent, torch.sin(angles), torch.cos(angles)], dim=-1)


class CueInjector(TwoLayerMLP):
    """Per-token 3D cue: ``MLP(fourier_encode(p))`` where the token's point is valid, exactly 0 elsewhere.

    MLP = ``Linear(3 + 6K, D) → GELU → Linear(D, D)``; the last Linear is zero-initialised, so at
    initialisation the injection is the identity on the vision embeddings (the pretrained model is
    unchanged) and the cue is learned from there. A model whose ``_init_weights`` re-initialises Linears
    must call :meth:`reset_parameters` on this module afterwards.
    """

    def __init__(self, hidden_size: int, num_frequencies: int = 8, max_extent: float = 10.0) -> None:
        fourier_frequencies(num_frequencies, max_extent)  # validate arguments early
        super().__init__(3 + 6 * num_frequencies, hidden_size, hidden_size)
        self.hidden_size = hidden_size
        self.num_frequencies = num_frequencies
        self.max_extent = max_extent
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.fc1.weight, std=0.02)
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, points: Tensor, valid: Tensor) -> Tensor:
        """``points [N, 3]`` (NaN allowed where invalid), ``valid [N] bool`` → ``[N, hidden_size]``.

        Non-finite points are treated as invalid even if ``valid`` says otherwise. NaNs are replaced *before*
        the encoding, so they reach neither the output nor the gradients. Output dtype = parameter dtype.
        """
        if points.ndim != 2 or points.shape[-1] != 3:
            raise ValueError(f"CueInjector: expected points [N, 3], got shape {tuple(points.shape)}")
        if valid.shape != points.shape[:1]:
            raise ValueError(f"CueInjector: valid must have shape [{points.shape[0]}], got {tuple(valid.shape)}")
        ok = valid.to(device=points.device, dtype=torch.bool) & torch.isfinite(points).all(dim=-1)
        safe = torch.where(ok.unsqueeze(-1), points.float(), 0.0)
        enc = fourier_encode(safe, self.num_frequencies, self.max_extent).to(self.fc1.weight.dtype)
        out = super().forward(enc)
        return torch.where(ok.unsqueeze(-1), out, torch.zeros((), dtype=out.dtype, device=out.device))


def cue_token_points(ctx: ClipTargets, depth_error: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(video_slots, points [N, 3] float32, valid [N])`` of the cues when they see ESTIMATED depth
    (``cue_depth_error``: :func:`loc3r.core.geometry.simulate_depth_error`, seeded by the sample id); the layout
    targets (if any) keep the exact points. The sample must have points."""
    sample, anchor = ctx.sample, ctx.anchor
    points, valid = np.full((len(ctx.video_slots), 3), np.nan), np.zeros(len(ctx.video_slots), dtype=bool)
    if anchor is not None and sample.poses is not None:
        seed = zlib.crc32(sample.sample_id.encode("utf-8"))
        noisy = simulate_depth_error(sample.points, sample.poses, depth_error, seed)
        with np.errstate(invalid="ignore"):
            points, valid = pool_token_points(anchor.points_to_bev(noisy), ctx.encoding.segments)
    return ctx.video_slots, points.astype(np.float32), valid


def batch_cues(items: list[dict], offsets: list[int], length: int, points: Tensor, valid: Tensor, estimated: bool):
    """``cue_points [B, L, 3]`` / ``cue_valid [B, L]``: the exact token points, or with ``estimated`` those of each
    sample's ``cue_token_points`` (none: no cue)."""
    if not estimated:
        return {"cue_points": torch.nan_to_num(points, nan=0.0), "cue_valid": valid.clone()}
    rows = [it.get("cue_token_points") for it in items]
    cue_points, cue_valid = torch.zeros_like(points), torch.zeros_like(valid)
    if any(r is not None for r in rows):
        cue_points = scatter_tokens([r and r[:2] for r in rows], offsets, length, 0.0, torch.float32)
        cue_valid = scatter_tokens([r and r[::2] for r in rows], offsets, length, False, torch.bool)
    return {"cue_points": torch.nan_to_num(cue_points, nan=0.0), "cue_valid": cue_valid}
