"""ViewSpatial-Bench's lmms-eval task ``loc3r_viewspatial`` (overall + per question type)."""

from __future__ import annotations

from loc3r.integrations.lmms_eval.spec import LmmsTask, with_references

_TYPES = (
    "camera_perspective_relative_direction",
    "camera_perspective_object_view_orientation",
    "person_perspective_relative_direction",
    "person_perspective_object_view_orientation",
    "person_perspective_scene_simulation_relative_direction",
)

LMMS_TASKS = {
    "loc3r_viewspatial": LmmsTask(
        "viewspatial",
        ("overall", *_TYPES),
        response=with_references,
        reference_fields={k: k for k in ("id", "question_type", "question", "choices", "answer")},
    ),  # fmt: skip
}
