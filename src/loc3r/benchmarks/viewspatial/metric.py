"""ViewSpatial-Bench scoring, as the benchmark's own ``evaluate.py`` and the lmms-eval ``viewspatial`` task do it.

Sources (read, not copied): ``evaluate.py`` of ZJU-REAL/ViewSpatial-Bench (``extract_option``, ``evaluate_vlm``)
and ``lmms_eval/tasks/viewspatial/utils.py`` of EvolvingLMMs-Lab/lmms-eval 0.7.3 (``extract_option``,
``viewspatial_process_results``, ``viewspatial_aggregate_*``). Both score the same way:

* the prediction's **last line** is kept (``text.split("\\n")[-1]``: a model that reasons first and answers last
  is read by its answer);
* the option letter of a text is the first match of ``\\b([A-D])\\b`` searched **case-insensitively**, upper-cased
  (:func:`extract_option`): ``"B. front"`` -> ``B``, ``"(c)"`` -> ``C``, ``"Answer: D"`` -> ``D``; a text with no
  stand-alone letter A-D (``"front-left"``, ``"E"``, empty) has none. The search is literal, so a stand-alone
  article ``"a"`` counts as option A (``"it is a B"`` -> ``A``), exactly as upstream;
* a question is correct iff the prediction's letter equals the letter of the ground-truth ``answer``
  (``"A. right"`` -> ``A``); a prediction without a letter is wrong;
* ``overall`` = correct / all questions (micro average, the paper's and lmms-eval's ``overall_accuracy``), and the
  accuracy per ``question_type`` (the five types below). Scores are percentages (upstream prints fractions /
  ``%``).

Where we are stricter (upstream would crash or silently mis-score): a record without ``prediction``, a prediction
that is not text, a ground truth with no option letter, and an unknown ``question_type`` raise
:class:`~loc3r.data.schema.SampleError` naming file, record and field (a ``null`` prediction is allowed: no answer,
wrong and counted).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from loc3r.evaluate.records import SampleError, record_where, require_field

#: the five question types of the release, in the paper's table order, and their metric keys (lmms-eval's names)
TYPE_KEYS: dict[str, str] = {
    "Camera perspective - Relative Direction": "camera_perspective_relative_direction",
    "Camera perspective - Object View Orientation": "camera_perspective_object_view_orientation",
    "Person perspective - Relative Direction": "person_perspective_relative_direction",
    "Person perspective - Object View Orientation": "person_perspective_object_view_orientation",
    "Person perspective - Scene Simulation Relative Direction": (
        "person_perspective_scene_simulation_relative_direction"
    ),
}
QUESTION_TYPES: tuple[str, ...] = tuple(TYPE_KEYS)

_OPTION = re.compile(r"\b([A-D])\b", re.IGNORECASE)


def extract_option(text: str) -> str | None:
    """The first stand-alone letter A-D of ``text`` (any case), upper-cased; ``None`` when there is none."""
    match = _OPTION.search(text)
    return match.group(1).upper() if match else None


def score_viewspatial_record(record: Mapping[str, Any], where: str = "record") -> float:
    """``1.0`` if the last line of ``prediction`` names the option of ``answer``, else ``0.0``."""
    require_field(record, "question_type", where)
    answer = require_field(record, "answer", where)
    prediction = require_field(record, "prediction", where)
    if not isinstance(answer, str) or extract_option(answer) is None:
        raise SampleError(f"{where}: field 'answer' must name an option letter A-D (e.g. 'A. right'), got {answer!r}")
    if prediction is None:
        return 0.0
    if not isinstance(prediction, str):
        raise SampleError(f"{where}: field 'prediction' must be a string, got {type(prediction).__name__}")
    return 1.0 if extract_option(prediction.split("\n")[-1]) == extract_option(answer) else 0.0


def score_viewspatial(records: Iterable[Mapping[str, Any]], source: str = "predictions") -> dict[str, Any]:
    """Score ViewSpatial-Bench records that carry the model's raw ``prediction``.

    Returns percentages: ``overall`` (micro), one key per question type present (:data:`TYPE_KEYS`), ``n/<key>``
    counts, ``n`` and ``no_prediction`` (records whose prediction was ``null``).
    """
    per_type: dict[str, list[float]] = defaultdict(list)
    no_prediction = 0
    for i, record in enumerate(records):
        where = record_where(source, i, record, "id")
        score = score_viewspatial_record(record, where)
        qtype = record["question_type"]
        if qtype not in TYPE_KEYS:
            raise SampleError(f"{where}: unknown question_type {qtype!r} (expected one of {list(TYPE_KEYS)})")
        no_prediction += record["prediction"] is None
        per_type[qtype].append(score)
    if not per_type:
        raise SampleError(f"{source}: no records to score")
    scores = [s for v in per_type.values() for s in v]
    result: dict[str, Any] = {"overall": 100.0 * sum(scores) / len(scores)}
    for qtype in QUESTION_TYPES:
        if qtype in per_type:
            result[TYPE_KEYS[qtype]] = 100.0 * sum(per_type[qtype]) / len(per_type[qtype])
    for qtype in QUESTION_TYPES:
        if qtype in per_type:
            result[f"n/{TYPE_KEYS[qtype]}"] = len(per_type[qtype])
    result["n"] = len(scores)
    result["no_prediction"] = no_prediction
    return result
