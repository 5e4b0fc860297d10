"""ViewSpatial-Bench's lmms-eval task ``loc3r_viewspatial`` (overall + per question type)."""

from __future__ import annotations

from loc3r.benchmarks.viewspatial.metric import TYPE_KEYS
from loc3r.integrations.lmms_eval.spec import LmmsTask, with_references

LMMS_TASKS = {
    "loc3r_viewspatial": LmmsTask(
        "viewspatial",
        ("overall", *TYPE_KEYS.values()),
        response=with_references,
        reference_fields={k: k for k in ("id", "question_type", "question", "choices", "answer")},
    ),  # fmt: skip
}
