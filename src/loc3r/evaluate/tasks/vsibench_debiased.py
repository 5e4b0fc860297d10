"""VSI-Bench-debiased: VSI-Bench with the questions answerable without the video removed or rewritten.

* Source: the ``debiased`` configuration of the HF dataset ``nyu-visionx/VSI-Bench`` (Brown et al., "Benchmark
  designers should train on the test set to expose exploitable non-visual shortcuts"; the lmms-eval task
  ``vsibench_debiased`` in ``lmms_eval/tasks/vsibench/vsibench_debiased.yaml`` of EvolvingLMMs-Lab/lmms-eval, which
  includes the VSI-Bench template: same documents, prompts and scoring, only ``dataset_name: debiased``).
* Data: the same record format as VSI-Bench (``{id, dataset, scene_name, question_type, question, options,
  ground_truth}``, extra fields such as ``pruned`` are ignored) and the same videos
  (``<video_root>/<dataset>/<scene_name>.mp4``), so the config's ``data`` is of kind ``vsibench`` on the debiased
  records file (``loc3r prepare vsibench`` prepares it like the full set).
* Prompt, prediction record and score: exactly :class:`~loc3r.evaluate.tasks.vsibench.VSIBenchTask`'s (the
  thinking-in-space rule of :mod:`loc3r.evaluate.vsibench`; lmms-eval 0.7.3 reads numerical answers with its looser
  ``extract_number`` — the same deviation as for VSI-Bench, see that module). The predictions go to
  ``OUT/vsibench_debiased_predictions.jsonl`` and ``loc3r score vsibench-debiased`` (or ``loc3r score vsibench``:
  the same function) re-scores them.
"""

from __future__ import annotations

from loc3r.evaluate.tasks.base import Task
from loc3r.evaluate.tasks.vsibench import VSIBenchTask

__all__ = ["VSIBenchDebiasedTask", "TASKS"]


class VSIBenchDebiasedTask(VSIBenchTask):
    """VSI-Bench-debiased (see the module docstring)."""

    name = "vsibench_debiased"
    title = "VSI-Bench-debiased"
    predictions_file = "vsibench_debiased_predictions.jsonl"
    score_command = "vsibench-debiased"


TASKS: dict[str, type[Task]] = {"vsibench_debiased": VSIBenchDebiasedTask}
