"""VSI-Bench scoring, as the official thinking-in-space / lmms-eval task does it (DESIGN.md §5).

Official behaviour followed (``lmms_eval/tasks/vsibench/utils.py`` of vision-x-nyu/thinking-in-space and
EvolvingLMMs-Lab/lmms-eval, read, not copied):

* ``fuzzy_matching``: the answer is the prediction's first **space**-separated token (``str.split(" ")``,
  not any whitespace), with trailing ``"."`` removed, then surrounding whitespace stripped. So
  ``"B. the sofa"`` -> ``"B"``, ``"3 meters"`` -> ``"3"``; ``"The answer is B"`` -> ``"The"`` (wrong) and a
  prediction that *starts* with a space has an empty first token (wrong). lmms-eval's model wrappers
  strip generated text, so callers should pass stripped model text too.
* Multiple choice (MCA) types: ``1.0`` if the matched token equals the ground-truth letter
  case-insensitively, else ``0.0``.
* Numerical (NA) types: Mean Relative Accuracy over the confidence thresholds
  ``θ ∈ {0.50, 0.55, …, 0.95}`` (``np.linspace(0.5, 0.95, 10)``, the official construction, so ties at a
  threshold resolve in floating point exactly as there):

      MRA = 1/10 · Σ_θ 1[ |ŷ − y| / y ≤ 1 − θ ]

  ŷ = ``float(first token)``; a prediction that ``float()`` cannot parse (``"three"``, ``"3m"``, ``"1,000"``,
  empty) scores 0, like the official ``WORST_CASE_FOR_METRICS``. ``nan``/``inf`` parse but never satisfy
  the inequality, so they score 0 as well.
* Aggregation: the mean per ``question_type``; ``object_rel_direction_{easy,medium,hard}`` are first
  averaged (unweighted, one value per difficulty) into the single task ``object_rel_direction``;
  ``overall`` = the unweighted mean of the 8 task scores.

Where we are stricter than the official script (it would crash or silently score 0): a record without
a ``prediction`` field, a prediction that is not text, an NA ground truth that is not a positive finite
number and an unknown ``question_type`` raise :class:`~loc3r.data.schema.SampleError` naming file,
record and field (a ``prediction`` of ``null`` is allowed: no answer, scored 0 and counted).

If a difficulty of ``object_rel_direction`` is absent from the file the task averages the present ones
(lmms-eval raises ``KeyError``; an older thinking-in-space variant counted it as 0); a plain
``object_rel_direction`` type (generated data without difficulties) joins that average as one more
group. If whole tasks are absent ``overall`` averages the present tasks (as the official mean over the
output dict does) and the result lists them under ``tasks_missing``. Scores are percentages (the
papers' unit; the official script returns fractions).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from loc3r.evaluate.records import SampleError, record_where, require_field

REL_DIRECTION_SUBTYPES: tuple[str, ...] = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
)
# "object_rel_direction" without a difficulty is accepted too (generated data may not split by difficulty).
MCA_QUESTION_TYPES: tuple[str, ...] = (
    *REL_DIRECTION_SUBTYPES,
    "object_rel_direction",
    "object_rel_distance",
    "route_planning",
    "obj_appearance_order",
)
NA_QUESTION_TYPES: tuple[str, ...] = (
    "object_abs_distance",
    "object_counting",
    "object_size_estimation",
    "room_size_estimation",
)
# The 8 tasks of the VSI-Bench average, in the paper's table order.
TASKS: tuple[str, ...] = (
    "object_counting",
    "object_abs_distance",
    "object_size_estimation",
    "room_size_estimation",
    "object_rel_distance",
    "object_rel_direction",
    "route_planning",
    "obj_appearance_order",
)

# The official construction: num_pts = (end - start) / interval + 2 = 10.999… -> int -> 10 points.
MRA_THRESHOLDS: np.ndarray = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))


def fuzzy_matching(prediction: str) -> str:
    """First space-separated token, trailing dots removed, whitespace stripped (official behaviour)."""
    return prediction.split(" ")[0].rstrip(".").strip()


def exact_match(prediction: str, target: str) -> float:
    """``1.0`` if the two strings are equal ignoring case, else ``0.0``."""
    return 1.0 if prediction.lower() == target.lower() else 0.0


def to_float(text: Any) -> float | None:
    """``float(text)`` or ``None`` when it cannot be parsed (the official ``to_float``)."""
    try:
        return float(text)
    except (TypeError, ValueError, OverflowError):
        return None


def abs_dist_norm(prediction: float, target: float) -> float:
    """Relative error ``|ŷ − y| / y``."""
    return abs(prediction - target) / target


def mean_relative_accuracy(prediction: float | None, target: float, thresholds: np.ndarray = MRA_THRESHOLDS) -> float:
    """MRA = mean over θ of ``1[|ŷ − y| / y ≤ 1 − θ]``; ``None`` (unparsable) scores 0.

    ``target`` must be positive (a relative error is undefined otherwise).
    """
    if target <= 0 or not np.isfinite(target):
        raise ValueError(f"MRA needs a positive finite ground truth, got {target!r}")
    if prediction is None:
        return 0.0
    return float((abs_dist_norm(prediction, target) <= 1 - thresholds).mean())


def score_vsibench_record(record: Mapping[str, Any], where: str = "record") -> float:
    """Score of one record (``question_type``, ``ground_truth``, ``prediction``) in [0, 1].

    A ``prediction`` of ``null`` scores 0 (no answer). Numbers are accepted and formatted with ``str``.
    """
    qtype = require_field(record, "question_type", where)
    gt = require_field(record, "ground_truth", where)
    prediction = require_field(record, "prediction", where)
    if prediction is None:
        return 0.0
    if isinstance(prediction, bool) or not isinstance(prediction, str | int | float):
        raise SampleError(f"{where}: field 'prediction' must be a string, got {type(prediction).__name__}")
    prediction = str(prediction)
    if qtype in MCA_QUESTION_TYPES:
        if not isinstance(gt, str) or not gt.strip():
            raise SampleError(f"{where}: field 'ground_truth' must be the option letter, got {gt!r}")
        return exact_match(fuzzy_matching(prediction), gt)
    if qtype in NA_QUESTION_TYPES:
        target = to_float(gt)
        if target is None or not np.isfinite(target) or target <= 0:
            raise SampleError(f"{where}: field 'ground_truth' must be a positive number for {qtype}, got {gt!r}")
        return mean_relative_accuracy(to_float(fuzzy_matching(prediction)), target)
    raise SampleError(
        f"{where}: unknown question_type {qtype!r} (expected one of {sorted(MCA_QUESTION_TYPES + NA_QUESTION_TYPES)})"
    )


def score_vsibench(records: Iterable[Mapping[str, Any]], source: str = "predictions") -> dict[str, Any]:
    """Score VSI-Bench records that carry the model's raw ``prediction``.

    Returns a flat dict (percentages): the 8 task names and ``overall``; every question type present
    (including the three ``object_rel_direction_*`` difficulties) as its own key; ``n/<type>`` counts;
    ``n`` the number of records; ``no_prediction`` the count of records whose prediction was ``null``;
    ``tasks_missing`` (only if some of the 8 tasks have no record).
    """
    per_type: dict[str, list[float]] = defaultdict(list)
    seen_ids: dict[str, int] = {}
    no_prediction = 0
    count = 0
    for i, record in enumerate(records):
        where = record_where(source, i, record, "id")
        if isinstance(record, Mapping) and "id" in record:
            rid = str(record["id"])
            if rid in seen_ids:
                raise SampleError(f"{where}: duplicate id {rid!r} (also record {seen_ids[rid]})")
            seen_ids[rid] = i
        score = score_vsibench_record(record, where)
        if record.get("prediction") is None:
            no_prediction += 1
        per_type[record["question_type"]].append(score)
        count += 1
    if count == 0:
        raise SampleError(f"{source}: no records to score")

    type_scores = {qtype: 100.0 * float(np.mean(v)) for qtype, v in per_type.items()}
    task_scores: dict[str, float] = {}
    for task in TASKS:
        if task == "object_rel_direction":
            parts = [type_scores[t] for t in (*REL_DIRECTION_SUBTYPES, "object_rel_direction") if t in type_scores]
            if parts:
                task_scores[task] = float(np.mean(parts))
        elif task in type_scores:
            task_scores[task] = type_scores[task]

    result: dict[str, Any] = dict(task_scores)
    result["overall"] = float(np.mean(list(task_scores.values())))
    missing = [t for t in TASKS if t not in task_scores]
    if missing:
        result["tasks_missing"] = missing
    for qtype in _ordered_types(type_scores):
        if qtype not in result:
            result[qtype] = type_scores[qtype]
    for qtype in _ordered_types(type_scores):
        result[f"n/{qtype}"] = len(per_type[qtype])
    result["n"] = count
    result["no_prediction"] = no_prediction
    return result


def _ordered_types(types: Sequence[str] | Mapping[str, Any]) -> list[str]:
    order = [*NA_QUESTION_TYPES, "object_rel_distance", *REL_DIRECTION_SUBTYPES, "object_rel_direction"]
    order += ["route_planning", "obj_appearance_order"]
    return [t for t in order if t in types]
