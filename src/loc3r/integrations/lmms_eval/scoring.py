"""Scoring of the loc3r lmms-eval tasks with loc3r's own task code (never a re-implemented metric).

:func:`process_results` turns one document + the model's response into the loc3r prediction record that
:func:`loc3r.evaluate.runner.evaluate_benchmark` would have written for that sample (``set``, ``question_id``,
``answer`` / pose, ``subset``, and the task's fields); :func:`aggregate` hands all records of a task to the loc3r
task's ``score`` — the ``loc3r score`` functions on a prediction file in the ``loc3r score`` format, restricted
references for a subset — and returns one metric of the result. The scores of one record list are computed once
(every metric of the task reads the same result).

Metric names are loc3r's (``em@1``, ``acc@0.5m``, ``cider``, ...); :data:`METRICS` lists them per benchmark and
:func:`aggregation_name` gives the Python name of each aggregation function in ``tasks/utils.py``. A metric the
scorer did not produce (a question type absent from the data, METEOR without Java) is ``nan``.

Localization responses are JSON (see the package docstring); one that does not parse into an object with
``position`` and ``rotation`` (or ``candidates``) is a missing prediction, which the SQA3D metric counts wrong.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loc3r.benchmarks.vsibench.metric import TASKS as VSI_TASKS

__all__ = ["METRICS", "LOWER_IS_BETTER", "aggregation_name", "process_results", "aggregate", "score_records"]

_log = logging.getLogger("loc3r.integrations.lmms_eval")

_TYPES = ("what", "is", "how", "can", "which", "others")
METRICS: dict[str, tuple[str, ...]] = {
    "sqa3d": ("em@1", "em-r", *(f"em@1/{t}" for t in _TYPES)),
    "sqa3d_localization": (
        "acc@0.5m",
        "acc@1.0m",
        "acc@15deg",
        "acc@30deg",
        "median_pos_err_m",
        "median_ori_err_deg",
    ),
    "scanqa": ("em@1", "em-r", "bleu-1", "bleu-2", "bleu-3", "bleu-4", "meteor", "rouge-l", "cider"),
    "msqa": ("em@1", "em-r", "bleu-1", "bleu-4", "meteor", "rouge-l", "cider"),
    "vsibench_debiased": ("overall", *VSI_TASKS),
    "viewspatial": (
        "overall",
        "camera_perspective_relative_direction",
        "camera_perspective_object_view_orientation",
        "person_perspective_relative_direction",
        "person_perspective_object_view_orientation",
        "person_perspective_scene_simulation_relative_direction",
    ),
    "vsisuper_recall": ("accuracy",),
    "vsisuper_count": ("mra",),
}
LOWER_IS_BETTER = {"median_pos_err_m", "median_ori_err_deg"}


def aggregation_name(benchmark: str, metric: str) -> str:
    """Python name of the aggregation function of ``metric`` (``sqa3d``, ``em@1`` -> ``sqa3d__em_1``)."""
    return f"{benchmark}__{re.sub(r'[^0-9a-zA-Z]+', '_', metric).strip('_')}"


def _localization_fields(response: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(response)
    except (TypeError, json.JSONDecodeError):
        return None
    if not isinstance(parsed, dict):
        return None
    if parsed.get("candidates") or ("position" in parsed and "rotation" in parsed):
        return parsed
    return None


def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """One document's loc3r prediction record, under every metric name of its benchmark."""
    benchmark = doc["loc3r_benchmark"]
    response = results[0] if results else ""
    response = "" if response is None else str(response)
    record: dict[str, Any] = {
        "set": benchmark,
        "config": doc["loc3r_config"],
        "total": int(doc["loc3r_total"]),
        "sample_id": doc["question_id"],
        "scene_id": doc["scene_id"],
        "seconds": 0.0,
        "question_id": json.loads(doc["question_id"]),
    }
    if benchmark == "sqa3d_localization":
        fields = _localization_fields(response)
        if fields is None:
            _log.warning("%s: question %s: response is not a loc3r pose record (counted as missing): %.80r",
                         benchmark, doc["question_id"], response)  # fmt: skip
            record["missing"] = True
        else:
            record.update({k: v for k, v in fields.items() if k != "question_id"})
    elif benchmark == "sqa3d":
        record.update(question=doc["question"], answer=response)
    elif benchmark == "scanqa":
        record.update(answer=response)
    elif benchmark == "msqa":
        record.update(
            answer=response,
            answers=list(doc["answers"]),
            question=doc["question"],
            type=doc["question_type"],
            query_type=doc["query_type"],
        )
    elif doc.get("loc3r_fields"):  # the record carries its references (VSI-Bench-debiased, ViewSpatial, VSI-SUPER)
        record.update(json.loads(doc["loc3r_fields"]), prediction=response)
    else:
        raise ValueError(f"document of unknown loc3r benchmark {benchmark!r}")
    return {metric: record for metric in METRICS[benchmark]}


_CACHE: dict[str, dict[str, Any]] = {}


def score_records(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The loc3r task's scores of prediction records (from :func:`process_results`): the records of documents
    of one config are a subset when fewer than its dataset's samples were scored (``--limit`` or the config's
    ``max_samples``), then the references are restricted to them, as ``loc3r eval`` does."""
    from loc3r.integrations.lmms_eval.docs import load_benchmark

    if not records:
        raise ValueError("no loc3r records to score")
    key = json.dumps(list(records), sort_keys=True, default=str)
    if key in _CACHE:
        return _CACHE[key]
    configs = {r["config"] for r in records}
    if len(configs) != 1:
        raise ValueError(f"records of several loc3r evaluation configs cannot be scored together: {sorted(configs)}")
    bench = load_benchmark(next(iter(configs)))
    subset = len(records) < records[0]["total"]
    kept = [{**r, "subset": subset} for r in records if not r.get("missing")]
    if not kept:
        raise ValueError(f"{bench.path}: no usable prediction among {len(records)} responses")
    with tempfile.TemporaryDirectory(prefix="loc3r-lmms-") as tmp:
        metrics, _ = bench.task.score(kept, bench.config, Path(tmp))
    metrics = dict(metrics)
    metrics["missing_responses"] = len(records) - len(kept)
    _CACHE.clear()  # keep one result: every metric of a task asks for the same list in a row
    _CACHE[key] = metrics
    return metrics


def aggregate(metric: str, records: Sequence[dict[str, Any]]) -> float:
    """One metric of the loc3r scores of ``records`` (``nan`` when the scorer did not produce it)."""
    value = score_records(records).get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)
