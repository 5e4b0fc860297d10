"""SQA3D situation localization: Acc@0.5m / Acc@1.0m / Acc@15° / Acc@30° (DESIGN.md §5).

Official behaviour followed: SQA3D's ``utils/localization_metric.py`` and ``assets/localization.md``
(SilongYong/SQA3D, read, not copied):

* Position error = Euclidean distance in the x-y plane (z ignored), metres.
* Orientation error = ``min(|r1 − r2|, 2π − |r1 − r2|)`` in degrees, i.e. the absolute yaw difference
  wrapped to [0°, 180°], where ``r`` is the z component of the quaternion's rotation vector
  (``scipy Rotation.from_quat(q).as_rotvec()[2]``) — for SQA3D's yaw-only quaternions this is the yaw.
* Up to 3 candidates per sample; **position and orientation each take their own closest candidate**
  ("we first find the closest predicted position and orientation to the ground truth", computed as two
  independent ``min`` over the candidates). A model that ranks candidates is not penalised for the
  order.
* Strict thresholds: ``< 0.5 m``, ``< 1.0 m``, ``< 15°``, ``< 30°`` (an error of exactly 0.5 m fails
  Acc@0.5m). Reported as percentages (the official script prints fractions).
* **Unit: the situation** by default (``unit="situation"``), as in the paper (SQA3D test: 719 situations in
  67 scenes; arXiv 2603.18002). A situation is a ``(scene_id, situation text)`` pair of the questions file;
  without the questions file it is a ``(scene_id, position, rotation)`` group of the annotations (on the real
  test records both groupings agree: every question of a situation carries the same pose). Each situation is
  counted once with the prediction of its first question (annotation-file order) that has one; situations
  whose questions got different predictions are counted in ``inconsistent_situations``. ``unit="question"``
  scores every annotation entry (3,519 on the test split), so situations with more questions weigh more.
  One deliberate refinement: errors are rounded to 1e-9 m / 1e-9° before the comparison, so an error of
  exactly 15° (which round-trips through radians as 14.999999999999998°) or of exactly 0.5 m between
  float coordinates fails as the definition says, instead of passing or failing by rounding noise as
  in the official script. Any error that differs from a threshold by more than 1e-9 is unaffected.

Both sides are compared in SQA3D's own convention (the agent faces its local −x axis); the facing offset
is the same constant on both sides and cancels in the difference. The array-level
:func:`localization_metrics` serves any frame (e.g. our BEV frame, yaw in radians) for the demo.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loc3r.core.geometry import wrap_angle
from loc3r.evaluate.records import (
    SampleError,
    index_by_id,
    match_predictions,
    record_where,
    require_field,
    require_number,
)

__all__ = [
    "POSITION_THRESHOLDS_M",
    "ORIENTATION_THRESHOLDS_DEG",
    "MAX_CANDIDATES",
    "sqa3d_quaternion_to_yaw",
    "yaw_to_sqa3d_quaternion",
    "yaw_error_deg",
    "position_error_xy",
    "localization_metrics",
    "parse_sqa3d_pose",
    "score_sqa3d_localization",
    "situation_groups",
    "LOCALIZATION_UNITS",
]

POSITION_THRESHOLDS_M: tuple[float, ...] = (0.5, 1.0)
ORIENTATION_THRESHOLDS_DEG: tuple[float, ...] = (15.0, 30.0)
MAX_CANDIDATES = 3
QUATERNION_KEYS: tuple[str, ...] = ("_x", "_y", "_z", "_w")
_TIE_DECIMALS = 9
LOCALIZATION_UNITS: tuple[str, ...] = ("situation", "question")
_POSE_KEY_DECIMALS = 6


def sqa3d_quaternion_to_yaw(quaternion: Mapping[str, Any] | Sequence[float] | np.ndarray) -> float:
    """Yaw (radians, [-π, π)) of an SQA3D quaternion ``{"_x","_y","_z","_w"}`` or an ``(x, y, z, w)`` sequence.

    Defined as the official metric does: the z component of the rotation vector of the normalised
    quaternion. With ``q`` and ``−q`` mapped to the same rotation (``w ≥ 0``), the rotation angle is
    ``θ = 2·atan2(|v|, w) ∈ [0, π]`` about the unit axis ``v / |v|``, so the result is ``θ·v_z / |v|``.
    For a yaw-only quaternion ``(0, 0, sin(ψ/2), cos(ψ/2))`` (all of SQA3D's) this is exactly ``ψ``; any
    positive scale and the sign flip ``q ≡ −q`` give the same yaw.

    Raises :class:`ValueError` for a zero-length or non-finite quaternion.
    """
    if isinstance(quaternion, Mapping):
        q = np.array([float(quaternion[k]) for k in QUATERNION_KEYS])
    else:
        q = np.asarray(quaternion, dtype=np.float64).reshape(-1)
        if q.shape != (4,):
            raise ValueError(f"quaternion must have 4 components (x, y, z, w), got {q.shape[0]}")
    if not np.all(np.isfinite(q)):
        raise ValueError(f"quaternion has non-finite components: {q.tolist()}")
    norm = float(np.linalg.norm(q))
    if norm < 1e-12:
        raise ValueError("quaternion has zero length")
    q = q / norm
    if q[3] < 0:
        q = -q
    v = q[:3]
    v_norm = float(np.linalg.norm(v))
    if v_norm < 1e-15:
        return 0.0
    angle = 2.0 * math.atan2(v_norm, q[3])
    return float(wrap_angle(angle * v[2] / v_norm))


def yaw_to_sqa3d_quaternion(yaw: float) -> dict[str, float]:
    """Yaw-only SQA3D quaternion ``{"_x": 0, "_y": 0, "_z": sin(ψ/2), "_w": cos(ψ/2)}`` (inverse of the above)."""
    return {"_x": 0.0, "_y": 0.0, "_z": math.sin(yaw / 2.0), "_w": math.cos(yaw / 2.0)}


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


def parse_sqa3d_pose(record: Any, where: str) -> tuple[np.ndarray, float]:
    """``(xy [2], yaw)`` from a record with ``position {x, y[, z]}`` and ``rotation {_x, _y, _z, _w}``.

    z is optional (the metric ignores it). Errors name ``where`` and the offending field.
    """
    position = require_field(record, "position", where)
    rotation = require_field(record, "rotation", where)
    if not isinstance(position, Mapping):
        raise SampleError(f"{where}: field 'position' must be an object {{x, y, z}}, got {position!r}")
    if not isinstance(rotation, Mapping):
        raise SampleError(f"{where}: field 'rotation' must be an object {{_x, _y, _z, _w}}, got {rotation!r}")
    xy = np.array(
        [require_number(require_field(position, k, f"{where}: field 'position'"), where, f"position.{k}") for k in "xy"]
    )
    if "z" in position and position["z"] is not None:
        require_number(position["z"], where, "position.z")
    quat = [
        require_number(require_field(rotation, k, f"{where}: field 'rotation'"), where, f"rotation.{k}")
        for k in QUATERNION_KEYS
    ]
    try:
        yaw = sqa3d_quaternion_to_yaw(quat)
    except ValueError as err:
        raise SampleError(f"{where}: field 'rotation': {err}") from err
    return xy, yaw


def _prediction_candidates(record: Any, where: str) -> list[tuple[np.ndarray, float]]:
    if isinstance(record, Mapping) and "candidates" in record:
        cands = record["candidates"]
        if not isinstance(cands, list) or not cands:
            raise SampleError(f"{where}: field 'candidates' must be a non-empty list, got {cands!r}")
        if len(cands) > MAX_CANDIDATES:
            raise SampleError(
                f"{where}: field 'candidates' has {len(cands)} entries; SQA3D allows at most {MAX_CANDIDATES}"
            )
        return [parse_sqa3d_pose(c, f"{where}: candidates[{k}]") for k, c in enumerate(cands)]
    return [parse_sqa3d_pose(record, where)]


def situation_groups(
    ann_index: Mapping[str, tuple[int, Any]],
    questions: Any = None,
    *,
    annotations_source: str = "annotations",
    questions_source: str = "questions",
) -> dict[tuple[Any, ...], list[str]]:
    """Annotation ids grouped by situation, in annotation-file order.

    With the official questions file (``{"questions": [...]}`` or its list) the key is
    ``(scene_id, situation text)``; an annotation whose question is not in the file is an error naming both
    files. Without it the key is ``(scene_id, x, y, _z, _w)`` rounded to 1e-6 (the pose the annotation carries).
    """
    groups: dict[tuple[Any, ...], list[str]] = {}
    text_of: dict[str, tuple[Any, ...]] | None = None
    if questions is not None:
        q_list = questions["questions"] if isinstance(questions, Mapping) and "questions" in questions else questions
        if not isinstance(q_list, list):
            raise SampleError(f"{questions_source}: expected {{'questions': [...]}} or a list of question entries")
        text_of = {}
        for qid, (j, q) in index_by_id(q_list, questions_source).items():
            where = record_where(questions_source, j, q)
            situation = require_field(q, "situation", where)
            if not isinstance(situation, str):
                raise SampleError(f"{where}: field 'situation' must be a string, got {situation!r}")
            text_of[qid] = (str(require_field(q, "scene_id", where)), situation.strip())
    for qid, (i, rec) in ann_index.items():
        where = record_where(annotations_source, i, rec)
        if text_of is not None:
            if qid not in text_of:
                raise SampleError(
                    f"{where}: field 'question_id' {qid!r} is not in {questions_source} (cannot find its situation)"
                )
            key = text_of[qid]
        else:
            xy, yaw = parse_sqa3d_pose(rec, where)
            scene = str(rec.get("scene_id", ""))
            key = (scene, *np.round([xy[0], xy[1], math.cos(yaw), math.sin(yaw)], _POSE_KEY_DECIMALS).tolist())
        groups.setdefault(key, []).append(qid)
    return groups


def _same_candidates(a: list[tuple[np.ndarray, float]], b: list[tuple[np.ndarray, float]]) -> bool:
    return len(a) == len(b) and all(
        np.allclose(xa, xb, atol=1e-6) and float(yaw_error_deg(ya, yb)) < 1e-4
        for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )


def score_sqa3d_localization(
    annotations: Any,
    predictions: Sequence[Mapping[str, Any]],
    *,
    questions: Any = None,
    unit: str = "situation",
    strict: bool = False,
    annotations_source: str = "annotations",
    predictions_source: str = "predictions",
    questions_source: str = "questions",
) -> dict[str, Any]:
    """SQA3D localization accuracies (percent) of predictions against an official annotations file.

    Args:
        annotations: ``{"annotations": [...]}`` (the official file) or its list; each entry needs
            ``question_id``, ``position`` and ``rotation``.
        predictions: ``[{"question_id", "position": {x, y, z}, "rotation": {_x, _y, _z, _w}}]`` or
            ``[{"question_id", "candidates": [≤ 3 × {"position", "rotation"}]}]`` in SQA3D's convention.
        questions: the official questions file (optional): situations are then ``(scene, situation text)``.
        unit: ``"situation"`` (default, the paper's unit: each situation counted once, see the module
            docstring) or ``"question"`` (every annotation entry once).
        strict: predictions for ids that are not in the annotations raise instead of being reported.

    Returns ``acc@0.5m``, ``acc@1.0m``, ``acc@15deg``, ``acc@30deg``, the median best errors, ``unit``, ``n``
    (units scored), ``n_questions``, ``n_scenes``, ``missing`` (units without prediction, scored as wrong),
    ``unknown`` (predictions ignored), ``missing_examples`` / ``unknown_examples`` (a few ids) when non-zero, and
    for the situation unit ``inconsistent_situations`` (situations whose questions got different predictions).
    """
    if unit not in LOCALIZATION_UNITS:
        raise ValueError(f"unit must be one of {LOCALIZATION_UNITS}, got {unit!r}")
    ann_list = (
        annotations["annotations"] if isinstance(annotations, Mapping) and "annotations" in annotations else annotations
    )
    if not isinstance(ann_list, list):
        raise SampleError(f"{annotations_source}: expected {{'annotations': [...]}} or a list of annotation entries")
    if not isinstance(predictions, list):
        raise SampleError(f"{predictions_source}: expected a list of prediction records")
    ann_index = index_by_id(ann_list, annotations_source)
    pred_index = index_by_id(predictions, predictions_source)
    _, _, report = match_predictions(ann_index, pred_index, prediction_source=predictions_source, strict=strict)
    if not ann_index:
        raise SampleError(f"{annotations_source}: no annotation entries to score")
    # Every prediction is validated, unknown ids included, so a malformed file never passes silently.
    parsed = {
        qid: _prediction_candidates(prec, record_where(predictions_source, j, prec))
        for qid, (j, prec) in pred_index.items()
    }
    if unit == "question":
        units = [[qid] for qid in ann_index]
    else:
        units = list(
            situation_groups(
                ann_index, questions, annotations_source=annotations_source, questions_source=questions_source
            ).values()
        )
    n = len(units)
    gt_xy = np.zeros((n, 2))
    gt_yaw = np.zeros(n)
    pred_xy = np.full((n, MAX_CANDIDATES, 2), np.nan)
    pred_yaw = np.full((n, MAX_CANDIDATES), np.nan)
    missing: list[str] = []
    inconsistent = 0
    for row, ids in enumerate(units):
        i, rec = ann_index[ids[0]]
        gt_xy[row], gt_yaw[row] = parse_sqa3d_pose(rec, record_where(annotations_source, i, rec))
        predicted = [parsed[qid] for qid in ids if qid in parsed]
        if not predicted:
            missing.append(ids[0])
            continue
        if any(not _same_candidates(predicted[0], other) for other in predicted[1:]):
            inconsistent += 1
        for k, (xy, yaw) in enumerate(predicted[0]):
            pred_xy[row, k], pred_yaw[row, k] = xy, yaw
    metrics = localization_metrics(gt_xy, gt_yaw, pred_xy, pred_yaw)
    scenes = {str(rec.get("scene_id")) for _, rec in ann_index.values() if isinstance(rec, Mapping)}
    result: dict[str, Any] = {**metrics, "unit": unit, "n_questions": len(ann_index), "n_scenes": len(scenes)}
    result["missing"] = len(missing)
    if missing:
        result["missing_examples"] = missing[:5]
    result["unknown"] = report["unknown"]
    if report.get("unknown_examples"):
        result["unknown_examples"] = report["unknown_examples"]
    if unit == "situation":
        result["inconsistent_situations"] = inconsistent
    return result
