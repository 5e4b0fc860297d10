"""Localization accuracy of predicted poses: Acc@0.5m / Acc@1.0m / Acc@15° / Acc@30° in any frame (DESIGN.md §5).

The definition of SQA3D's localization metric (``utils/localization_metric.py`` of SilongYong/SQA3D, read, not
copied), on arrays: position error = Euclidean distance in the x-y plane (z ignored), orientation error = the
absolute yaw difference wrapped to [0°, 180°]; up to K candidates per sample, position and orientation each take
their own closest candidate; strict thresholds (``< 0.5 m``, ``< 1.0 m``, ``< 15°``, ``< 30°``) reported as
percentages. Errors are rounded to 1e-9 m / 1e-9° before the comparison, so an error of exactly a threshold fails
as the definition says instead of by rounding noise. SQA3D's files (quaternions, situations, the units) are scored
by :mod:`loc3r.benchmarks.sqa3d.metric`; SynthRooms scores its BEV poses with :func:`localization_metrics` directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

POSITION_THRESHOLDS_M: tuple[float, ...] = (0.5, 1.0)
ORIENTATION_THRESHOLDS_DEG: tuple[float, ...] = (15.0, 30.0)
_TIE_DECIMALS = 9


def yaw_error_deg(yaw_a: np.ndarray | float, yaw_b: np.ndarray | float) -> np.ndarray | float:
    """Absolute yaw difference in degrees, wrapped to [0, 180]: ``min(|d|, 360° − |d|)`` for d = a − b mod 360°."""
    diff = np.abs(np.mod(np.asarray(yaw_a, dtype=np.float64) - np.asarray(yaw_b, dtype=np.float64), 2 * np.pi))
    err = np.degrees(np.minimum(diff, 2 * np.pi - diff))
    return float(err) if np.ndim(err) == 0 else err


def position_error_xy(pos_a: np.ndarray, pos_b: np.ndarray) -> np.ndarray | float:
    """Euclidean distance of ``[..., >=2]`` positions in the x-y plane (z ignored)."""
    a = np.asarray(pos_a, dtype=np.float64)
    b = np.asarray(pos_b, dtype=np.float64)
    err = np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1])
    return float(err) if np.ndim(err) == 0 else err


def localization_metrics(
    gt_xy: np.ndarray,
    gt_yaw: np.ndarray,
    pred_xy: np.ndarray,
    pred_yaw: np.ndarray,
) -> dict[str, Any]:
    """Acc@0.5m / 1.0m / 15° / 30° (percent) of N samples with K candidates each.

    Args:
        gt_xy: ``[N, 2]`` (or ``[N, 3]``, z ignored) ground-truth positions, metres.
        gt_yaw: ``[N]`` ground-truth yaw, radians.
        pred_xy: ``[N, K, 2|3]`` or ``[N, 2|3]`` (K = 1) predicted positions; NaN rows are absent
            candidates (a sample whose candidates are all NaN — a missing prediction — is wrong).
        pred_yaw: ``[N, K]`` or ``[N]`` predicted yaws, radians; NaN = absent.

    Position and orientation each use their closest candidate. Returns ``acc@0.5m``, ``acc@1.0m``,
    ``acc@15deg``, ``acc@30deg``, the medians of the best errors (``median_pos_err_m``,
    ``median_ori_err_deg``, over samples that have a prediction) and ``n``.
    """
    gt_xy = np.asarray(gt_xy, dtype=np.float64)[..., :2]
    gt_yaw = np.asarray(gt_yaw, dtype=np.float64)
    pred_xy = np.asarray(pred_xy, dtype=np.float64)[..., :2]
    pred_yaw = np.asarray(pred_yaw, dtype=np.float64)
    if pred_xy.ndim == 2:
        pred_xy = pred_xy[:, None, :]
    if pred_yaw.ndim == 1:
        pred_yaw = pred_yaw[:, None]
    n = gt_xy.shape[0]
    if n == 0:
        raise ValueError("no samples to score")
    if gt_xy.shape != (n, 2) or gt_yaw.shape != (n,) or pred_xy.shape[0] != n or pred_yaw.shape[0] != n:
        raise ValueError(
            f"shape mismatch: gt_xy {gt_xy.shape}, gt_yaw {gt_yaw.shape}, pred_xy {pred_xy.shape}, "
            f"pred_yaw {pred_yaw.shape}"
        )
    if not (np.isfinite(gt_xy).all() and np.isfinite(gt_yaw).all()):
        raise ValueError("ground-truth poses must be finite")
    pos_err = position_error_xy(pred_xy, gt_xy[:, None, :])  # [N, K], NaN for absent candidates
    ori_err = np.asarray(yaw_error_deg(pred_yaw, gt_yaw[:, None]))
    # Errors are rounded to 1e-9 m / 1e-9 deg before the strict comparison, so that an error that is
    # exactly the threshold in decimal (0.5 m, 15°) fails deterministically instead of by rounding noise
    # (15° goes through radians and comes back as 14.999999999999998).
    best_pos = np.round(np.min(np.where(np.isnan(pos_err), np.inf, pos_err), axis=1), _TIE_DECIMALS)
    best_ori = np.round(np.min(np.where(np.isnan(ori_err), np.inf, ori_err), axis=1), _TIE_DECIMALS)
    result: dict[str, Any] = {}
    for thr in POSITION_THRESHOLDS_M:
        result[f"acc@{thr:.1f}m"] = 100.0 * float(np.mean(best_pos < thr))
    for thr in ORIENTATION_THRESHOLDS_DEG:
        result[f"acc@{thr:.0f}deg"] = 100.0 * float(np.mean(best_ori < thr))
    finite_pos = best_pos[np.isfinite(best_pos)]
    finite_ori = best_ori[np.isfinite(best_ori)]
    result["median_pos_err_m"] = float(np.median(finite_pos)) if finite_pos.size else None
    result["median_ori_err_deg"] = float(np.median(finite_ori)) if finite_ori.size else None
    result["n"] = n
    return result
