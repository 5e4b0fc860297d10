"""SQA3D metrics: situation localization Acc@0.5m / Acc@1.0m / Acc@15° / Acc@30° (DESIGN.md §5) and QA.

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
is the same constant on both sides and cancels in the difference. The array-level definition (thresholds, closest
candidate, the 1e-9 rounding) is :func:`loc3r.evaluate.localization.localization_metrics`, which serves any frame.

SQA3D QA (:func:`score_sqa3d_qa`): EM@1 / EM-R of :mod:`loc3r.evaluate.qa` (LEO's ``clean_answer``) with the
per-type breakdown: LEO's ``get_sqa_question_type`` (:func:`sqa3d_question_type`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loc3r.core.geometry import wrap_angle
from loc3r.evaluate.localization import localization_metrics, yaw_error_deg
from loc3r.evaluate.qa import (
    SQA3D_QUESTION_TYPES,
    as_record_list,
    prediction_answer,
    qa_exact_match,
    reference_answers,
)
from loc3r.evaluate.records import (
    SampleError,
    index_by_id,
    match_predictions,
    record_where,
    require_field,
    require_number,
)

MAX_CANDIDATES = 3
QUATERNION_KEYS: tuple[str, ...] = ("_x", "_y", "_z", "_w")
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
        q_list = as_record_list(questions, questions_source, "questions")
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
    ann_list = as_record_list(annotations, annotations_source, "annotations")
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


def sqa3d_question_type(question: str) -> str:
    """``what`` / ``is`` / ``how`` / ``can`` / ``which`` / ``others`` by prefix of the question (LEO)."""
    q = question.lstrip().lower()
    for qtype in SQA3D_QUESTION_TYPES[:-1]:
        if q.startswith(qtype):
            return qtype
    return "others"


def score_sqa3d_qa(
    annotations: Any,
    predictions: Sequence[Mapping[str, Any]],
    questions: Any = None,
    *,
    strict: bool = False,
    annotations_source: str = "annotations",
    predictions_source: str = "predictions",
    questions_source: str = "questions",
) -> dict[str, Any]:
    """SQA3D EM@1 / EM-R (percent) with the per-type breakdown.

    Args:
        annotations: the official annotations file content (``{"annotations": [...]}``) or its list; each
            entry needs ``question_id`` and ``answers`` (``[{"answer": ...}]``) and is scored once.
        predictions: ``[{"question_id", "answer"}]``; a missing prediction is wrong and reported.
        questions: optional questions file content (``{"questions": [...]}`` or its list) giving each
            ``question`` text for the type breakdown; without it a prediction's own ``question`` field is
            used, and if neither exists there is no breakdown.
        strict: predictions for ids not in the annotations raise instead of being reported.

    Returns ``em@1``, ``em-r``, ``n``, ``missing``, ``unknown`` (+ ``*_examples``) and per type
    ``em@1/<type>``, ``em-r/<type>``, ``n/<type>``.
    """
    ann_list = as_record_list(annotations, annotations_source, "annotations")
    ann_index = index_by_id(ann_list, annotations_source)
    pred_index = index_by_id(predictions, predictions_source)
    _, _, report = match_predictions(ann_index, pred_index, prediction_source=predictions_source, strict=strict)

    question_text: dict[str, str] = {}
    if questions is not None:
        q_list = as_record_list(questions, questions_source, "questions")
        for qid, (i, rec) in index_by_id(q_list, questions_source).items():
            text = require_field(rec, "question", record_where(questions_source, i, rec))
            if not isinstance(text, str):
                raise SampleError(f"{record_where(questions_source, i, rec)}: field 'question' must be a string")
            question_text[qid] = text
    else:
        for qid, (_, rec) in pred_index.items():
            if isinstance(rec.get("question"), str):
                question_text[qid] = rec["question"]

    preds: list[str | None] = []
    refs: list[list[str]] = []
    types: list[str] = []
    for qid, (i, rec) in ann_index.items():
        refs.append(reference_answers(rec, record_where(annotations_source, i, rec)))
        if qid in pred_index:
            j, prec = pred_index[qid]
            preds.append(prediction_answer(prec, record_where(predictions_source, j, prec)))
        else:
            preds.append(None)
        types.append(sqa3d_question_type(question_text[qid]) if qid in question_text else "")
    have_types = questions is not None or (bool(question_text) and len(question_text) == len(ann_index))
    if questions is not None:
        no_question = [qid for qid in ann_index if qid not in question_text]
        if no_question:
            raise SampleError(
                f"{questions_source}: {len(no_question)} annotation question_id(s) have no question "
                f"(e.g. {no_question[:5]})"
            )
    result = qa_exact_match(preds, refs, types if have_types else None)
    counts = {"n": result.pop("n"), **report}
    out = {"em@1": result.pop("em@1"), "em-r": result.pop("em-r"), **counts, **result}
    if not have_types:
        out["types"] = "unavailable (pass --questions to get the per-type breakdown)"
    return out
