"""VSI-SUPER's lmms-eval tasks ``loc3r_vsisuper_recall`` (accuracy) and ``loc3r_vsisuper_count`` (MRA). The
streaming count is not an lmms-eval task (a ``generate_until`` request has one answer; the benchmark asks at several
times of one streamed video): it runs through ``loc3r eval --config vsisuper_count_streaming.yaml``."""

from __future__ import annotations

from loc3r.integrations.lmms_eval.spec import LmmsTask, with_references

LMMS_TASKS = {
    "loc3r_vsisuper_recall": LmmsTask(
        "vsisuper_recall", ("accuracy",), response=with_references,
        reference_fields={"id": "id", "video_path": "video_path", "type": "split", "question": "question",
                          "options": "options", "answer": "answer"},
    ),
    "loc3r_vsisuper_count": LmmsTask(
        "vsisuper_count", ("mra",), response=with_references,
        reference_fields={"id": "id", "video_path": "video_path", "split": "split", "question": "question",
                          "answer": "answer"},
    ),
}  # fmt: skip
