"""VSI-Bench-debiased's lmms-eval task ``loc3r_vsibench_debiased`` (the 8 VSI-Bench tasks + overall). VSI-Bench itself
runs as lmms-eval's own ``vsibench`` task (its prompt and scoring, see the plugin's docstring)."""

from __future__ import annotations

from loc3r.benchmarks.vsibench.metric import TASKS as VSI_TASKS
from loc3r.integrations.lmms_eval.spec import LmmsTask, with_references

_FIELDS = ("id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth")

LMMS_TASKS = {
    "loc3r_vsibench_debiased": LmmsTask(
        "vsibench_debiased",
        ("overall", *VSI_TASKS),
        response=with_references,
        reference_fields={k: k for k in _FIELDS},
    ),  # fmt: skip
}
