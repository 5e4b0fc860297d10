"""Scoring of the loc3r lmms-eval tasks with loc3r's own task code (never a re-implemented metric).

:func:`process_results` turns one document + the model's response into the loc3r prediction record that
:func:`loc3r.evaluate.runner.evaluate_benchmark` would have written for that sample (``set``, ``question_id``,
``answer`` / pose, ``subset``, and the task's fields); :func:`aggregate` hands all records of a task to the loc3r
task's ``score`` — the ``loc3r score`` functions on a prediction file in the ``loc3r score`` format, restricted
references for a subset — and returns one metric of the result. The scores of one record list are computed once
(every metric of the task reads the same result).

Metric names are loc3r's (``em@1``, ``acc@0.5m``, ``cider``, ...); each benchmark folder's ``LMMS_TASKS`` lists them
(``LmmsTask.metrics``) and :func:`aggregation_name` gives the Python name of each aggregation function in :mod:`.hooks`.
The record fields taken from a response are the task's (:attr:`~.spec.LmmsTask.response`). A metric the
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

from loc3r.integrations.lmms_eval.docs import task_of_benchmark

_log = logging.getLogger("loc3r.integrations.lmms_eval")


def aggregation_name(benchmark: str, metric: str) -> str:
    """Python name of the aggregation function of ``metric`` (``sqa3d``, ``em@1`` -> ``sqa3d__em_1``)."""
    return f"{benchmark}__{re.sub(r'[^0-9a-zA-Z]+', '_', metric).strip('_')}"


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
    spec = task_of_benchmark(benchmark)
    fields = spec.response(doc, response)
    if fields is None:
        _log.warning("%s: question %s: response is not a loc3r pose record (counted as missing): %.80r",
                     benchmark, doc["question_id"], response)  # fmt: skip
        record["missing"] = True
    else:
        record.update(fields)
    return {metric: record for metric in spec.metrics}


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
        scores, _ = bench.task.score(kept, bench.config, Path(tmp))
    scores = dict(scores)
    scores["missing_responses"] = len(records) - len(kept)
    _CACHE.clear()  # keep one result: every metric of a task asks for the same list in a row
    _CACHE[key] = scores
    return scores


def aggregate(metric: str, records: Sequence[dict[str, Any]]) -> float:
    """One metric of the loc3r scores of ``records`` (``nan`` when the scorer did not produce it)."""
    value = score_records(records).get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)
