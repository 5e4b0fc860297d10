"""Evaluation tasks in the style of lmms-eval: per benchmark, a pinned prompt and a scorer.

Each task module states the exact prompt template, frame count and sampling; :func:`task_settings`
returns them as a dict that is printed next to every result (peer projects' numbers moved by several
CIDEr points with one prompt suffix, so the prompt is part of the result).

Tasks:

* :mod:`loc3r.evaluate.tasks.synth` — SynthRooms situated localization (heads or text coordinates),
  situated QA (EM@1) and VSI-style questions (VSI-Bench score), the tasks of ``loc3r demo``.
"""

from loc3r.evaluate.tasks.synth import (
    LOC_QUESTION,
    TextLocalizationDataset,
    format_pose_text,
    parse_pose_text,
    task_settings,
)

__all__ = ["LOC_QUESTION", "TextLocalizationDataset", "format_pose_text", "parse_pose_text", "task_settings"]
