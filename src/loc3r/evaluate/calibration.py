"""Does the predicted position sigma mean anything? Calibration, a temperature, and top-3 pose candidates.

**Calibration.** The ``<Pos>`` head predicts a diagonal Gaussian ``N(μ, diag(σ_x², σ_y²))`` (its training loss is
that Gaussian's NLL). If it is calibrated, the normalised error ``r = sqrt((Δx/σ_x)² + (Δy/σ_y)²)`` of held-out
predictions follows a chi distribution with 2 degrees of freedom, so ``P(r ≤ k) = 1 − exp(−k²/2)``: 39.3 % within
1σ, 86.5 % within 2σ, 98.9 % within 3σ (for an isotropic σ this is the fraction of errors within a circle of
radius kσ). :func:`sigma_calibration` reports the observed fractions next to these and the reliability curve
(expected vs observed coverage at 10 levels) that :func:`reliability_plot` draws.

**Temperature.** One scale ``T`` for every σ, fitted on *validation* predictions by maximum likelihood:
the NLL of ``N(μ, T²Σ)`` over N 2-D errors is ``Σ r_i²/(2T²) + 2N log T + const``, minimised at
``T² = mean(r_i²) / 2`` (closed form, :func:`fit_temperature`). Applied as ``σ' = T σ``.

**Candidates** (SQA3D accepts up to 3; position and orientation each take their closest, DESIGN.md §5).
:func:`pose_candidates`: orientations = the modes of the predicted bin distribution (circular local maxima, by
probability; each refined by the circular mean of the bins within ±2 around it) after the head's own yaw, skipping
modes within one bin of a yaw already chosen; a unimodal distribution is completed with the head's yaw ± 4 bins
(40° for 36 bins: inside Acc@30° of the truth when the head is off by 10-70°); positions = the mean, then the
mean ± ``spread``·σ' along the axis of the larger calibrated σ — the Gaussian's most likely directions of error;
``spread`` is fitted on validation (:func:`fit_candidate_spread`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.core.geometry import wrap_angle

#: P(r ≤ k) for r ~ chi(2): the fraction of 2-D Gaussian errors within k sigma
GAUSSIAN_2D_COVERAGE: dict[int, float] = {k: 1.0 - math.exp(-(k**2) / 2.0) for k in (1, 2, 3)}
_LEVELS = np.linspace(0.1, 0.9, 9).tolist() + [0.95]


def normalised_errors(
    pred_xy: np.ndarray, gt_xy: np.ndarray, sigma: np.ndarray, temperature: float = 1.0
) -> np.ndarray:
    """``r = |(pred − gt) / (T σ)|`` per sample (``[N, 2]`` inputs, σ per axis); non-positive σ is an error."""
    pred_xy, gt_xy, sigma = (np.asarray(a, dtype=np.float64)[..., :2] for a in (pred_xy, gt_xy, sigma))
    if np.any(~np.isfinite(sigma)) or np.any(sigma <= 0):
        raise ValueError("sigma must be finite and positive")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return np.hypot(*((pred_xy - gt_xy) / (temperature * sigma)).T)


def sigma_calibration(
    pred_xy: np.ndarray, gt_xy: np.ndarray, sigma: np.ndarray, temperature: float = 1.0
) -> dict[str, Any]:
    """Observed vs Gaussian coverage: ``within_{1,2,3}sigma`` (percent) next to ``expected_{1,2,3}sigma``, the NLL
    per sample (``nll``, nats, of the 2-D Gaussian), ``median_r``, ``n`` and ``reliability``: a list of
    ``[expected, observed]`` coverage pairs (fractions) at levels 0.1 ... 0.95."""
    r = normalised_errors(pred_xy, gt_xy, sigma, temperature)
    if r.size == 0:
        raise ValueError("no samples")
    s = temperature * np.asarray(sigma, dtype=np.float64)[..., :2]
    nll = 0.5 * r**2 + np.log(s).sum(axis=-1) + math.log(2 * math.pi)
    out: dict[str, Any] = {}
    for k, expected in GAUSSIAN_2D_COVERAGE.items():
        out[f"within_{k}sigma"] = 100.0 * float(np.mean(r <= k))
        out[f"expected_{k}sigma"] = 100.0 * expected
    out["nll"] = float(np.mean(nll))
    out["median_r"] = float(np.median(r))
    out["n"] = int(r.size)
    # coverage level p <-> radius sqrt(-2 ln(1 - p)) of the chi(2) distribution
    out["reliability"] = [[p, float(np.mean(r <= math.sqrt(-2.0 * math.log(1.0 - p))))] for p in _LEVELS]
    return out


def fit_temperature(pred_xy: np.ndarray, gt_xy: np.ndarray, sigma: np.ndarray) -> float:
    """Maximum-likelihood scale of σ on (validation) predictions: ``T = sqrt(mean(r²) / 2)`` (module docstring)."""
    r = normalised_errors(pred_xy, gt_xy, sigma)
    if r.size == 0:
        raise ValueError("no samples to fit a temperature on")
    return float(math.sqrt(max(float(np.mean(r**2)) / 2.0, 1e-12)))


def reliability_plot(curves: dict[str, Sequence[Sequence[float]]], path: str | Path, title: str = "") -> Path:
    """Expected vs observed coverage (one line per curve name, the diagonal = calibrated) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=120)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="calibrated")
    for name, pairs in curves.items():
        arr = np.asarray(pairs, dtype=np.float64)
        ax.plot(arr[:, 0], arr[:, 1], marker="o", label=name)
    ax.set_xlabel("expected coverage (2-D Gaussian)")
    ax.set_ylabel("observed coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title or "position sigma reliability")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def orientation_modes(probabilities: Sequence[float] | np.ndarray, k: int = 3, window: int = 2) -> list[float]:
    """Up to ``k`` yaws (radians, [-π, π)) at the modes of a circular bin distribution, most probable first.

    Bin ``b`` of ``B`` is centred at ``-π + (b + 0.5)·2π/B``
    (:func:`loc3r.objectives.situation.orientation_bin_centers`). A mode
    is a bin not lower than both neighbours (plateaus counted once); each is refined by the circular mean of the
    bins within ``±window``.
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    n = p.size
    if n < 3 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("orientation probabilities must be >= 3 finite non-negative values with a positive sum")
    p = p / p.sum()
    centres = -math.pi + (np.arange(n) + 0.5) * 2 * math.pi / n
    peaks = [b for b in range(n) if p[b] >= p[(b - 1) % n] and p[b] > p[(b + 1) % n]]
    if not peaks:  # flat distribution
        peaks = [int(np.argmax(p))]
    peaks.sort(key=lambda b: -p[b])
    yaws = []
    for b in peaks[:k]:
        idx = [(b + d) % n for d in range(-window, window + 1)]
        v = np.array([np.sum(p[idx] * np.cos(centres[idx])), np.sum(p[idx] * np.sin(centres[idx]))])
        yaws.append(float(wrap_angle(math.atan2(v[1], v[0]))))
    return yaws


def pose_candidates(
    xy: Sequence[float] | np.ndarray,
    sigma: Sequence[float] | np.ndarray,
    yaw_probabilities: Sequence[float] | np.ndarray | None,
    yaw: float,
    k: int = 3,
    temperature: float = 1.0,
    spread: float = 1.0,
) -> list[tuple[np.ndarray, float]]:
    """Up to ``k`` ``(xy [2], yaw)`` candidates, the head's pose first (module docstring)."""
    xy = np.asarray(xy, dtype=np.float64)[:2]
    s = temperature * np.asarray(sigma, dtype=np.float64)[:2]
    yaws = [float(yaw)]
    bin_width = 2 * math.pi / 36
    modes: list[float] = []
    if yaw_probabilities is not None and k > 1:
        bin_width = 2 * math.pi / len(yaw_probabilities)
        modes = orientation_modes(yaw_probabilities, k)
    for cand in [*modes, yaw + 4 * bin_width, yaw - 4 * bin_width]:
        if len(yaws) < k and all(abs(float(wrap_angle(cand - y))) > bin_width for y in yaws):
            yaws.append(float(wrap_angle(cand)))
    axis = np.eye(2)[int(np.argmax(s))]
    offset = spread * float(np.max(s)) * axis
    positions = [xy, xy + offset, xy - offset]
    return [(positions[i], yaws[min(i, len(yaws) - 1)]) for i in range(k)]


def fit_candidate_spread(
    pred_xy: np.ndarray,
    gt_xy: np.ndarray,
    sigma: np.ndarray,
    temperature: float,
    grid: Sequence[float] = tuple(np.arange(0.0, 3.01, 0.25)),
) -> tuple[float, dict[float, float]]:
    """The ``spread`` (in calibrated σ) of the 2 extra position candidates that maximises the mean of Acc@0.5m and
    Acc@1.0m (closest of 3) on validation predictions. Returns ``(best, {spread: score})``."""
    pred_xy, gt_xy = np.asarray(pred_xy, np.float64)[:, :2], np.asarray(gt_xy, np.float64)[:, :2]
    s = temperature * np.asarray(sigma, np.float64)[:, :2]
    axis = np.eye(2)[np.argmax(s, axis=1)] * np.max(s, axis=1, keepdims=True)
    scores: dict[float, float] = {}
    for a in grid:
        cands = np.stack([pred_xy, pred_xy + a * axis, pred_xy - a * axis], axis=1)
        best = np.min(np.linalg.norm(cands - gt_xy[:, None], axis=-1), axis=1)
        scores[float(a)] = 50.0 * float(np.mean(best < 0.5) + np.mean(best < 1.0))
    best_a = max(scores, key=lambda a: (scores[a], -a))
    return best_a, scores


def qa_by_localization(
    loc_correct: Sequence[bool], qa_correct: Sequence[bool], sigma_norm: Sequence[float] | None = None
) -> dict[str, Any]:
    """The paper's appendix analysis: QA accuracy (percent) of questions whose situation was localized right vs
    wrong, their counts, and (with ``sigma_norm``, e.g. ``|σ|`` per question's situation) the mean σ per group."""
    loc = np.asarray(loc_correct, dtype=bool)
    qa = np.asarray(qa_correct, dtype=bool)
    if loc.shape != qa.shape:
        raise ValueError(f"{loc.shape[0]} localization flags for {qa.shape[0]} QA flags")
    out: dict[str, Any] = {}
    for name, mask in (("localized", loc), ("not_localized", ~loc)):
        out[f"qa_acc_{name}"] = 100.0 * float(np.mean(qa[mask])) if mask.any() else None
        out[f"n_{name}"] = int(mask.sum())
        if sigma_norm is not None:
            sig = np.asarray(sigma_norm, dtype=np.float64)
            out[f"mean_sigma_{name}_m"] = float(np.mean(sig[mask])) if mask.any() else None
    return out
