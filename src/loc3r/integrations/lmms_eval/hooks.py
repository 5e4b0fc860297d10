"""Functions the loc3r task YAMLs name (``!function loc3r.integrations.lmms_eval.hooks.X``); thin wrappers over
:mod:`.docs` and :mod:`.scoring`.

The shared hooks (``doc_to_text``, ``doc_to_messages``, ``process_results``, ...) are named by the template
``loc3r/benchmarks/_lmms_eval_template_yaml``; the per-task ones are generated here from the benchmark folders'
``LMMS_TASKS``: ``<task>_docs`` (its ``process_docs``) and ``<benchmark>__<metric>`` (the aggregation of one metric,
:func:`~.scoring.aggregation_name`). Nothing here holds state: the documents are cached in
:func:`loc3r.integrations.lmms_eval.docs.load_benchmark` and the scores in :mod:`loc3r.integrations.lmms_eval.scoring`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from loc3r.integrations.lmms_eval import docs as _docs
from loc3r.integrations.lmms_eval import scoring as _scoring


def _docs_of(task: str) -> Callable[[Any], Any]:
    def process_docs(dataset: Any) -> Any:
        """Replace the placeholder dataset with the documents of the task's loc3r evaluation config."""
        import datasets

        return datasets.Dataset.from_list(_docs.build_docs(task))

    process_docs.__name__ = f"{task}_docs"
    return process_docs


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    """The user text for any model: the situation (when the benchmark has one), then the pinned prompt."""
    return f"{doc['situation']} {doc['prompt']}" if doc["situation"] else doc["prompt"]


def doc_to_visual(doc: dict[str, Any]) -> list[str]:
    """The scene's frame source (a ScanNet-style scan folder), when the config's data names it."""
    return [doc["video"]] if doc["video"] else []


def doc_to_messages(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> list[dict]:
    content: list[dict[str, Any]] = [{"type": "video", "url": v} for v in doc_to_visual(doc)]
    content.append({"type": "text", "text": doc_to_text(doc, lmms_eval_specific_kwargs)})
    return [{"role": "user", "content": content}]


def doc_to_target(doc: dict[str, Any]) -> str:
    return doc["answers"][0] if doc["answers"] else ""


def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    return _scoring.process_results(doc, results)


def _aggregation(metric: str, name: str) -> Callable[[Sequence[dict[str, Any]]], float]:
    def aggregate(records: Sequence[dict[str, Any]]) -> float:
        return _scoring.aggregate(metric, records)

    aggregate.__name__ = name
    return aggregate


for _task, _spec in _docs.lmms_tasks().items():
    globals()[f"{_task}_docs"] = _docs_of(_task)
    for _metric in _spec.metrics:
        _name = _scoring.aggregation_name(_spec.benchmark, _metric)
        globals()[_name] = _aggregation(_metric, _name)
