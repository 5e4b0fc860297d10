"""VSI-SUPER scoring (Cambrian-S): VSR (long-horizon spatial recall) and VSC (continual counting, regular and
streaming), with the official definitions.

Sources (read, not copied): Cambrian-S's lmms-eval tasks (``lmms-eval/lmms_eval/tasks/cambrians_vsr``,
``cambrians_vsc``, ``cambrians_vsc_streaming``, ``utils.py`` each, and the streaming model
``models/simple/cambrians_vsc_streaming.py`` for what a streaming prediction is) and EvolvingLMMs-Lab/lmms-eval
0.7.3 ``lmms_eval/tasks/vsisuper/{recall/vsr_utils.py, count/vsc_utils.py, count_streaming/vsc_streaming_utils.py}``.

* **VSR** (multiple choice, one question per video): Cambrian-S's rule, the VSI-Bench one —
  :func:`loc3r.benchmarks.vsibench.metric.fuzzy_matching` (first space-separated token, trailing dots removed) equal
  to the
  ``answer`` letter ignoring case. *lmms-eval 0.7.3 differs*: it takes the first character ``[A-D]`` anywhere in
  the upper-cased text (``"The answer is B"`` -> ``A`` from "ANSWER"); we follow the benchmark's authors.
  Accuracy per duration (``type``: ``10mins`` ... ``240mins``), as each duration is its own upstream task.
* **VSC regular** (one count per video): lmms-eval 0.7.3's rule (Cambrian-S's ``float(response)`` crashes on any
  non-number): the prediction is the first number of the text (``-?\\d+(?:\\.\\d+)?``; **no number reads as 0**),
  scored by Mean Relative Accuracy over θ ∈ {0.50, ..., 0.95} (:data:`loc3r.benchmarks.vsibench.metric.MRA_THRESHOLDS`,
  the same 10 points) with relative error ``|ŷ − y| / |y|``; a **zero ground truth** scores 1 if ŷ == 0 else 0.
  Note the upstream consequence kept here: an unparsable answer to a question whose count is 0 scores 1.
* **VSC streaming** (``query_times`` + ``answers``: the running count asked at several times of one video): the
  prediction is one count per query time (a JSON list, or a string holding one, as the upstream model wrapper
  returns it); each element is read with ``float()`` (a non-number scores 0) and scored by the MRA above (zero
  ground truth: exact 0 needed; Cambrian-S's ``try/except`` would give it 1 whatever the prediction — we follow
  lmms-eval here). Pairs are formed with ``zip(prediction, answers)`` as upstream: a shorter prediction list leaves
  the missing query times **unscored** (counted as ``queries_unanswered``), a longer one's extra elements are
  ignored. Aggregation: ``mra`` = the mean over all (video, query) pairs (Cambrian-S's ``aggregate_results``, which
  flattens every video's per-query scores), and ``mra_video_mean`` = the mean over videos of each video's mean
  (lmms-eval 0.7.3's per-document ``mra``; a video with no scored pair counts 0).

All scores are percentages. Stricter than upstream (which would crash or mis-score silently): a missing field, a
ground truth that is not a finite non-negative number, ``answers`` and ``query_times`` of different lengths, and an
unknown VSR answer letter raise :class:`~loc3r.data.schema.SampleError` naming file, record and field.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from loc3r.benchmarks.vsibench.metric import MRA_THRESHOLDS, exact_match, fuzzy_matching
from loc3r.evaluate.records import SampleError, record_where, require_field

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def extract_number(text: Any) -> float:
    """The first number of ``text`` (lmms-eval 0.7.3 VSC ``_extract_number``); ``None`` / no number -> ``0.0``."""
    if text is None:
        return 0.0
    match = _NUMBER.search(str(text))
    return float(match.group(0)) if match else 0.0


def count_mra(prediction: float | None, target: float) -> float:
    """MRA of a count: mean over θ of ``1[|ŷ − y| / |y| ≤ 1 − θ]``; ``y == 0``: 1 iff ``ŷ == 0``; ``None`` or a
    non-finite ŷ scores 0."""
    if prediction is None or not math.isfinite(prediction):
        return 0.0
    if target == 0.0:
        return 1.0 if prediction == 0.0 else 0.0
    return float((abs(prediction - target) / abs(target) <= 1 - MRA_THRESHOLDS).mean())


def _target(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SampleError(f"{where}: field {field!r} must be a count, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise SampleError(f"{where}: field {field!r} must be a count, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise SampleError(f"{where}: field {field!r} must be a finite count >= 0, got {value!r}")
    return number


def _split(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    return "all" if value in (None, "") else str(value)


# ------------------------------------------------------------------------------------------------------ VSR
def score_vsr_record(record: Mapping[str, Any], where: str = "record") -> float:
    """``1.0`` if the first token of ``prediction`` is the ``answer`` letter (any case), else ``0.0``."""
    answer = require_field(record, "answer", where)
    prediction = require_field(record, "prediction", where)
    if not isinstance(answer, str) or not re.fullmatch(r"[A-Za-z]", answer.strip()):
        raise SampleError(f"{where}: field 'answer' must be the option letter (e.g. 'B'), got {answer!r}")
    if prediction is None:
        return 0.0
    if not isinstance(prediction, str):
        raise SampleError(f"{where}: field 'prediction' must be a string, got {type(prediction).__name__}")
    return exact_match(fuzzy_matching(prediction), answer.strip())


def _by_split(per_split: Mapping[str, list[float]], name: str) -> dict[str, Any]:
    scores = [s for v in per_split.values() for s in v]
    result: dict[str, Any] = {name: 100.0 * float(np.mean(scores))}
    for split in sorted(per_split, key=_minutes):
        result[f"{name}/{split}"] = 100.0 * float(np.mean(per_split[split]))
    for split in sorted(per_split, key=_minutes):
        result[f"n/{split}"] = len(per_split[split])
    result["n"] = len(scores)
    return result


def _minutes(split: str) -> tuple[float, str]:
    match = re.match(r"(\d+)", split)
    return (float(match.group(1)) if match else math.inf, split)


def score_vsr(records: Iterable[Mapping[str, Any]], source: str = "predictions") -> dict[str, Any]:
    """VSR accuracy (percent): ``accuracy`` over all records and ``accuracy/<type>`` per duration; ``n/<type>``,
    ``n``, ``no_prediction``."""
    per_split: dict[str, list[float]] = defaultdict(list)
    missing = 0
    for i, record in enumerate(records):
        where = record_where(source, i, record, "id")
        per_split[_split(record, "type")].append(score_vsr_record(record, where))
        missing += record["prediction"] is None
    if not per_split:
        raise SampleError(f"{source}: no records to score")
    return {**_by_split(per_split, "accuracy"), "no_prediction": missing}


# ------------------------------------------------------------------------------------------------------ VSC
def score_vsc(records: Iterable[Mapping[str, Any]], source: str = "predictions") -> dict[str, Any]:
    """VSC regular mode (percent): ``mra`` over all videos and ``mra/<split>`` per duration; ``n/<split>``, ``n``."""
    per_split: dict[str, list[float]] = defaultdict(list)
    missing = 0
    for i, record in enumerate(records):
        where = record_where(source, i, record, "id")
        target = _target(require_field(record, "answer", where), where, "answer")
        prediction = require_field(record, "prediction", where)
        if prediction is not None and not isinstance(prediction, str | int | float):
            raise SampleError(f"{where}: field 'prediction' must be a string, got {type(prediction).__name__}")
        missing += prediction is None
        per_split[_split(record, "split")].append(count_mra(extract_number(prediction), target))
    if not per_split:
        raise SampleError(f"{source}: no records to score")
    return {**_by_split(per_split, "mra"), "no_prediction": missing}


def streaming_predictions(prediction: Any, where: str) -> list[float | None]:
    """One number (or ``None``: not a number) per element of a streaming prediction: a JSON list, or a string
    holding one (upstream's model output); an unparsable string is an empty list (upstream: no pair scored)."""
    if prediction is None:
        return []
    if isinstance(prediction, str):
        try:
            prediction = json.loads(prediction)
        except json.JSONDecodeError:
            return []
        if not isinstance(prediction, list):  # upstream: a response that is not a JSON list scores nothing
            return []
    if not isinstance(prediction, list):
        raise SampleError(f"{where}: field 'prediction' must be a list of counts, got {type(prediction).__name__}")
    out: list[float | None] = []
    for value in prediction:
        try:
            number = None if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            number = None
        out.append(number)
    return out


def score_vsc_streaming(records: Iterable[Mapping[str, Any]], source: str = "predictions") -> dict[str, Any]:
    """VSC streaming (percent): ``mra`` (all query pairs) and ``mra_video_mean`` (mean of per-video means), each
    also per duration; ``n`` videos, ``n_queries`` scored pairs, ``queries_unanswered``."""
    pairs: dict[str, list[float]] = defaultdict(list)
    videos: dict[str, list[float]] = defaultdict(list)
    unanswered = 0
    count = 0
    for i, record in enumerate(records):
        where = record_where(source, i, record, "id")
        answers = require_field(record, "answers", where)
        if not isinstance(answers, list) or not answers:
            raise SampleError(f"{where}: field 'answers' must be a non-empty list of counts, got {answers!r}")
        targets = [_target(a, where, "answers") for a in answers]
        times = record.get("query_times")
        if times is not None and (not isinstance(times, list) or len(times) != len(targets)):
            raise SampleError(f"{where}: field 'query_times' must list one time per answer ({len(targets)})")
        predicted = streaming_predictions(require_field(record, "prediction", where), where)
        scores = [count_mra(p, t) for p, t in zip(predicted, targets, strict=False)]
        unanswered += max(0, len(targets) - len(predicted))
        split = _split(record, "split")
        pairs[split].extend(scores)
        videos[split].append(float(np.mean(scores)) if scores else 0.0)
        count += 1
    if count == 0:
        raise SampleError(f"{source}: no records to score")
    all_pairs = [s for v in pairs.values() for s in v]
    all_videos = [s for v in videos.values() for s in v]
    result: dict[str, Any] = {
        "mra": 100.0 * float(np.mean(all_pairs)) if all_pairs else 0.0,
        "mra_video_mean": 100.0 * float(np.mean(all_videos)),
    }
    for split in sorted(videos, key=_minutes):
        result[f"mra/{split}"] = 100.0 * float(np.mean(pairs[split])) if pairs[split] else 0.0
        result[f"mra_video_mean/{split}"] = 100.0 * float(np.mean(videos[split]))
    for split in sorted(videos, key=_minutes):
        result[f"n/{split}"] = len(videos[split])
    result.update(n=count, n_queries=len(all_pairs), queries_unanswered=unanswered)
    return result
