"""What a benchmark folder's ``lmms_eval.py`` declares: its lmms-eval tasks (:class:`LmmsTask`, in ``LMMS_TASKS``).

``loc3r/benchmarks/<name>/lmms_eval.py`` exports ``LMMS_TASKS: {lmms-eval task name: LmmsTask}`` and its folder holds
one YAML per task (``include: ../_lmms_eval_template_yaml``; ``process_docs`` and the metric aggregations name the
generated hooks of :mod:`loc3r.integrations.lmms_eval.hooks`). The plugin (:mod:`.docs`, :mod:`.scoring`,
:mod:`.model`) reads these declarations and never names a benchmark itself. This module imports nothing of the
plugin, so that the benchmark modules it serves do not import the plugin back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


def answer_only(doc: dict[str, Any], response: str) -> dict[str, Any] | None:
    """Record fields of a short-answer response: ``answer``."""
    return {"answer": response}


def with_references(doc: dict[str, Any], response: str) -> dict[str, Any] | None:
    """Record fields of a benchmark whose record carries its references (the document's ``loc3r_fields``)."""
    return {**json.loads(doc["loc3r_fields"]), "prediction": response}


@dataclass(frozen=True)
class LmmsTask:
    """One lmms-eval task of a loc3r benchmark."""

    #: the loc3r task it runs (``benchmark:`` of its evaluation config ``$LOC3R_EVAL_CONFIGS/<benchmark>.yaml``)
    benchmark: str
    #: loc3r metric names reported to lmms-eval (one aggregation each)
    metrics: tuple[str, ...]
    #: ``response(doc, text)`` -> the task's fields of the prediction record; ``None``: not a usable response
    #: (counted as a missing prediction, i.e. wrong)
    response: Callable[[dict[str, Any], str], dict[str, Any] | None] = answer_only
    #: records carrying their references: ``{document field: record attribute}`` kept as ``loc3r_fields``
    reference_fields: Mapping[str, str] | None = None
    #: the model answers with the loc3r task's pose record as JSON (``<Pos>``/``<Ori>`` heads), no text
    pose_response: bool = False
    #: record attributes tried in turn for the document's ``question_id``
    id_attrs: tuple[str, ...] = ("question_id", "sample_id", "id")
