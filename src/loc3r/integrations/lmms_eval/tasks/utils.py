"""Functions the loc3r task YAMLs name (``!function utils.X``); thin wrappers over :mod:`..docs` and :mod:`..scoring`.

lmms-eval executes this file once per ``!function`` tag, so nothing here holds state: the documents are cached in
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


loc3r_sqa3d_docs = _docs_of("loc3r_sqa3d")
loc3r_sqa3d_localization_docs = _docs_of("loc3r_sqa3d_localization")
loc3r_scanqa_docs = _docs_of("loc3r_scanqa")
loc3r_msqa_docs = _docs_of("loc3r_msqa")
loc3r_vsibench_debiased_docs = _docs_of("loc3r_vsibench_debiased")
loc3r_viewspatial_docs = _docs_of("loc3r_viewspatial")
loc3r_vsisuper_recall_docs = _docs_of("loc3r_vsisuper_recall")
loc3r_vsisuper_count_docs = _docs_of("loc3r_vsisuper_count")


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


for _benchmark, _metrics in _scoring.METRICS.items():
    for _metric in _metrics:
        _name = _scoring.aggregation_name(_benchmark, _metric)
        globals()[_name] = _aggregation(_metric, _name)
