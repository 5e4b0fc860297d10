"""Beacon3D QA (Huang et al., CVPR 2025, arXiv 2503.22420): object-centric scores per knowledge type.

Official behaviour followed: the benchmark's own ``evaluate_qa.py`` and ``utils.py`` (repository
``beacon-3d/beacon-3d``; read in its public fork ``chrisindris/beacon-3d``, files ``evaluate_qa.py``,
``utils.py``, ``data/qa_to_scanqa_format.py``; read, not copied):

* Files: ``metadata_<domain>_qa.json`` = ``{scene_id: {class: {obj_id: {"grounding_text": [3 str],
  "qa": [{"question", "answer", "tag", "extra_knowledge"}]}}}}`` — the unit of evaluation is the object,
  each with (normally) 3 questions. ``<domain>_qa.json`` is the same in ScanQA format (what models read),
  built by ``qa_to_scanqa_format.py``: ``question_id = f"{scene}_{obj_id}_{i}_{tag}_{extra}"``, records
  ``{question_id, scene_id, question, object_ids: [obj_id], answers: [answer], object_names?}``, a question
  text repeated in one scene kept once (:func:`beacon3d_records` rebuilds exactly these ids).
* Per question: prediction and answer are cleaned (SQA3D/LEO ``clean_answer``); exact match → score 5;
  a *binary* question (the official ``is_binary_question``: ``"yes"`` or ``"no"`` occurs anywhere in the
  cleaned answer — a substring test, kept as is) with a relaxed match (containment either way, spaces
  removed) → score 5; otherwise a GPT-4o judge gives 1..5 (``data/system_prompt.json``).
* ``overall (case)`` and each knowledge type (``class``, ``appearance``, ``geometry``, ``spatial``,
  ``existence``; ``functionality`` when present) = ``(mean score − 1) / 4 × 100`` over the questions;
  ``overall (object)`` = percentage of objects whose questions **all** score ≥ 4 (official: consecutive
  triples in metadata order; here grouped by (scene, object id), the same grouping for the released files).
  Every metadata entry is scored, so a question text shared by two objects counts for both (as upstream).

Deviation, stated with every result: **no LLM judge runs here** (no network). A prediction may carry its
own ``score`` (1..5) from the official judge; an answer that matches by rule gets 5, any other answer
without a judge score gets the minimum 1 (so the numbers are a lower bound: ``judged`` and ``unjudged``
count both cases). ``em`` / ``em-r`` are reported too (rule-based, judge-free).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from loc3r.benchmarks.beacon3d.reader import beacon3d_records
from loc3r.evaluate.qa import answer_match, clean_answer
from loc3r.evaluate.records import SampleError, index_by_id, match_predictions, record_where

KNOWLEDGE_TYPES: tuple[str, ...] = ("class", "appearance", "geometry", "spatial", "existence", "functionality")
#: an object counts as answered when every one of its questions scores at least this (official)
OBJECT_SCORE_THRESHOLD = 4


def is_binary_answer(answers: Sequence[str]) -> bool:
    """The official ``is_binary_question``: ``"yes"`` or ``"no"`` occurs (as a substring) in a cleaned answer."""
    return any("yes" in a.lower() or "no" in a.lower() for a in answers)


def _judge_score(record: Any, where: str) -> int | None:
    if not isinstance(record, Mapping) or record.get("score") is None:
        return None
    score = record["score"]
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score) or not 1 <= score <= 5:
        raise SampleError(f"{where}: field 'score' must be the judge's score 1..5, got {score!r}")
    return int(round(score))


def score_beacon3d(
    metadata: Any,
    predictions: Sequence[Mapping[str, Any]],
    *,
    strict: bool = False,
    metadata_source: str = "metadata",
    predictions_source: str = "predictions",
) -> dict[str, Any]:
    """Beacon3D QA scores (percent) of ``[{question_id, answer[, score]}]`` against a metadata file.

    ``question_id`` is the ScanQA-format id (``{scene}_{obj}_{i}_{tag}_{extra}``); ``answer`` a string (or a list,
    the first is used); ``score`` an optional judge score 1..5. Returns ``class`` ... ``existence`` (each type
    present), ``overall_case``, ``overall_object``, ``em``, ``em-r``, ``n`` (questions scored, metadata entries),
    ``n_objects``, ``judged`` / ``unjudged`` (answers without a rule match that had / lacked a judge score),
    ``missing`` / ``unknown`` (+ examples).
    """
    items, scanqa = beacon3d_records(metadata, source=metadata_source)
    pred_index = index_by_id(predictions, predictions_source)
    _, _, report = match_predictions(
        [r["question_id"] for r in scanqa], pred_index, prediction_source=predictions_source, strict=strict
    )
    scores: list[int] = []
    em_hits: list[bool] = []
    em_r_hits: list[bool] = []
    by_tag: dict[str, list[int]] = {}
    by_object: dict[tuple[str, str], list[int]] = {}
    judged = unjudged = 0
    for item in items:
        score, em, em_r = 1, False, False
        if item.question_id in pred_index:
            j, rec = pred_index[item.question_id]
            where = record_where(predictions_source, j, rec)
            answer = rec.get("answer") if isinstance(rec, Mapping) else None
            if isinstance(answer, list) and answer:
                answer = answer[0]
            if not isinstance(answer, str):
                raise SampleError(f"{where}: field 'answer' must be a string, got {answer!r}")
            pred, gts = clean_answer(answer), [clean_answer(item.answer)]
            em, em_r = answer_match(pred, gts)
            judge = _judge_score(rec, where)
            if em or (is_binary_answer(gts) and em_r):
                score = 5
            elif judge is not None:
                score, judged = judge, judged + 1
            else:
                unjudged += 1
        scores.append(score)
        em_hits.append(em)
        em_r_hits.append(em_r)
        by_tag.setdefault(item.tag.lower(), []).append(score)
        by_object.setdefault((item.scene_id, item.object_id), []).append(score)

    def normalised(values: Sequence[int]) -> float:
        return (sum(values) / len(values) - 1.0) / 4.0 * 100.0

    result: dict[str, Any] = {}
    for tag in KNOWLEDGE_TYPES:
        if tag in by_tag:
            result[tag] = normalised(by_tag[tag])
    for tag in sorted(set(by_tag) - set(KNOWLEDGE_TYPES)):
        result[tag] = normalised(by_tag[tag])
    result["overall_case"] = normalised(scores)
    objects = [all(s >= OBJECT_SCORE_THRESHOLD for s in v) for v in by_object.values()]
    result["overall_object"] = 100.0 * sum(objects) / len(objects)
    result["em"] = 100.0 * sum(em_hits) / len(items)
    result["em-r"] = 100.0 * sum(em_r_hits) / len(items)
    result.update({"n": len(items), "n_questions": len(scanqa), "n_objects": len(objects)})
    result.update({"judged": judged, "unjudged": unjudged, **report})
    return result
